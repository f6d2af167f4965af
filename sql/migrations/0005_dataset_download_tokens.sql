-- Single-use dataset download tokens (DESIGN §3-4). The SDK generates 32 random bytes and stores only their
-- SHA-256. Redeeming consumes the token in ONE statement, so of N concurrent redeems exactly one wins; the
-- winner gets a short-lived download grant (returned once, stored hashed) that Storage policies accept in
-- the `x-lora-download-grant` header, which lets even an anon-key holder sign a download URL for exactly
-- that object for two minutes.

create or replace function lora_internal.request_header(header_name text) returns text
language sql stable set search_path = '' as $$
  select nullif(nullif(current_setting('request.headers', true), '')::json ->> header_name, '')
$$;
revoke all on function lora_internal.request_header(text) from public;
grant execute on function lora_internal.request_header(text) to anon, authenticated, service_role;

create or replace function public.redeem_download_token(token text) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  presented text := encode(sha256(convert_to(coalesce(redeem_download_token.token, ''), 'UTF8')), 'hex');
  download_grant text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  t public.dataset_download_tokens%rowtype;
  d public.datasets%rowtype;
begin
  update public.dataset_download_tokens
     set used_at = now(),
         grant_hash = encode(sha256(convert_to(download_grant, 'UTF8')), 'hex'),
         grant_expires_at = now() + interval '2 minutes'
   where token_hash = presented and used_at is null and revoked_at is null and expires_at > now()
  returning * into t;
  if not found then
    select * into t from public.dataset_download_tokens where token_hash = presented;
    if not found then
      raise exception 'download token not found' using errcode = 'LPT01';
    elsif t.revoked_at is not null then
      raise exception 'download token was revoked' using errcode = 'LPT04';
    elsif t.used_at is not null then
      raise exception 'download token was already used' using errcode = 'LPT03',
        hint = 'Tokens are single use: ask the dataset owner for a new one.';
    else
      raise exception 'download token expired' using errcode = 'LPT02',
        hint = 'Ask the dataset owner for a new token.';
    end if;
  end if;
  select * into d from public.datasets where id = t.dataset_id;
  return jsonb_build_object(
    'dataset_id', d.id, 'name', d.name, 'format', d.format, 'bucket', d.storage_bucket,
    'path', d.storage_path, 'file_name', d.file_name, 'size_bytes', d.size_bytes, 'sha256', d.sha256,
    'num_examples', d.num_examples, 'grant', download_grant, 'grant_expires_at', t.grant_expires_at);
end
$$;
revoke all on function public.redeem_download_token(text) from public, anon, authenticated;
grant execute on function public.redeem_download_token(text) to anon, authenticated, service_role;

-- SECURITY INVOKER on purpose: a user removes only their own expired tokens, the service role all of them.
create or replace function public.cleanup_expired_dataset_tokens() returns integer
language plpgsql volatile set search_path = '' as $$
declare removed integer;
begin
  delete from public.dataset_download_tokens where expires_at < now();
  get diagnostics removed = row_count;
  return removed;
end
$$;
revoke all on function public.cleanup_expired_dataset_tokens() from public, anon, authenticated;
grant execute on function public.cleanup_expired_dataset_tokens() to authenticated, service_role;

create or replace function lora_internal.download_grant_allows(object_name text) returns boolean
language plpgsql stable security definer set search_path = '' as $$
declare presented text := lora_internal.request_header('x-lora-download-grant');
begin
  if presented is null then
    return false;
  end if;
  return exists (
    select 1
      from public.dataset_download_tokens t
      join public.datasets d on d.id = t.dataset_id
     where t.grant_hash = encode(sha256(convert_to(presented, 'UTF8')), 'hex')
       and t.grant_expires_at > now()
       and d.storage_bucket = 'lora-datasets'
       and d.storage_path = object_name);
end
$$;
revoke all on function lora_internal.download_grant_allows(text) from public;
grant execute on function lora_internal.download_grant_allows(text) to anon, authenticated, service_role;

drop policy if exists lora_datasets_download_grant_select on storage.objects;
create policy lora_datasets_download_grant_select on storage.objects for select to anon, authenticated
  using (bucket_id = 'lora-datasets' and lora_internal.download_grant_allows(name));
