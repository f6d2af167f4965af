-- The two private buckets (DESIGN §4) and owner-folder policies: an object belongs to the user whose id is
-- the first folder of its name, `<user_id>/...`.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values
  ('lora-datasets', 'lora-datasets', false, 524288000,
   array['application/json', 'application/jsonl', 'application/x-ndjson', 'application/x-jsonlines', 'text/plain']),
  ('lora-models', 'lora-models', false, 5368709120,
   array['application/octet-stream', 'application/x-tar', 'application/gzip', 'application/x-gzip',
         'application/json', 'application/x-safetensors'])
on conflict (id) do update
  set public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;

drop policy if exists lora_datasets_owner_select on storage.objects;
create policy lora_datasets_owner_select on storage.objects for select to authenticated
  using (bucket_id = 'lora-datasets' and (storage.foldername(name))[1] = (select auth.uid()::text));
drop policy if exists lora_datasets_owner_insert on storage.objects;
create policy lora_datasets_owner_insert on storage.objects for insert to authenticated
  with check (bucket_id = 'lora-datasets' and (storage.foldername(name))[1] = (select auth.uid()::text));
drop policy if exists lora_datasets_owner_update on storage.objects;
create policy lora_datasets_owner_update on storage.objects for update to authenticated
  using (bucket_id = 'lora-datasets' and (storage.foldername(name))[1] = (select auth.uid()::text))
  with check (bucket_id = 'lora-datasets' and (storage.foldername(name))[1] = (select auth.uid()::text));
drop policy if exists lora_datasets_owner_delete on storage.objects;
create policy lora_datasets_owner_delete on storage.objects for delete to authenticated
  using (bucket_id = 'lora-datasets' and (storage.foldername(name))[1] = (select auth.uid()::text));

drop policy if exists lora_models_owner_select on storage.objects;
create policy lora_models_owner_select on storage.objects for select to authenticated
  using (bucket_id = 'lora-models' and (storage.foldername(name))[1] = (select auth.uid()::text));
drop policy if exists lora_models_owner_insert on storage.objects;
create policy lora_models_owner_insert on storage.objects for insert to authenticated
  with check (bucket_id = 'lora-models' and (storage.foldername(name))[1] = (select auth.uid()::text));
drop policy if exists lora_models_owner_update on storage.objects;
create policy lora_models_owner_update on storage.objects for update to authenticated
  using (bucket_id = 'lora-models' and (storage.foldername(name))[1] = (select auth.uid()::text))
  with check (bucket_id = 'lora-models' and (storage.foldername(name))[1] = (select auth.uid()::text));
drop policy if exists lora_models_owner_delete on storage.objects;
create policy lora_models_owner_delete on storage.objects for delete to authenticated
  using (bucket_id = 'lora-models' and (storage.foldername(name))[1] = (select auth.uid()::text));
