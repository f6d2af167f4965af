-- Job tokens (DESIGN §3): what a pod holding the anon key plus the token of job X may do, and nothing more.
-- Every check is a primary-key lookup of the job and a comparison of SHA-256 hashes; wrong, expired and
-- ended tokens get the same error after the same work, so responses reveal nothing.

create or replace function lora_internal.job_for_token(p_job_id uuid, p_token text, p_allow_ended boolean default false)
returns public.training_jobs
language plpgsql stable security definer set search_path = '' as $$
declare
  presented text := encode(sha256(convert_to(coalesce(p_token, ''), 'UTF8')), 'hex');
  j public.training_jobs%rowtype;
begin
  select * into j from public.training_jobs t where t.id = p_job_id;
  if not found
     or j.job_token_hash is distinct from presented
     or j.job_token_expires_at is null or j.job_token_expires_at <= now()
     or (not p_allow_ended and j.status in ('succeeded', 'failed', 'cancelled')) then
    raise exception 'job token is invalid, expired, or its job has ended'
      using errcode = '42501',
            hint = 'Issue a new job token (lp.jobs.issue_token) for a job that has not ended.';
  end if;
  return j;
end
$$;

-- For Storage policies: the job named by the x-lora-job-id / x-lora-job-token headers, or NULL.
create or replace function lora_internal.job_from_request_headers() returns public.training_jobs
language plpgsql stable security definer set search_path = '' as $$
declare
  job_id_text text := lora_internal.request_header('x-lora-job-id');
  token text := lora_internal.request_header('x-lora-job-token');
  j public.training_jobs%rowtype;
begin
  if job_id_text is null or token is null
     or job_id_text !~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' then
    return null;
  end if;
  select * into j from public.training_jobs t where t.id = job_id_text::uuid;
  if not found
     or j.job_token_hash is distinct from encode(sha256(convert_to(token, 'UTF8')), 'hex')
     or j.job_token_expires_at is null or j.job_token_expires_at <= now()
     or j.status in ('succeeded', 'failed', 'cancelled') then
    return null;
  end if;
  return j;
end
$$;

create or replace function lora_internal.job_token_can_read_dataset(object_name text) returns boolean
language plpgsql stable security definer set search_path = '' as $$
declare j public.training_jobs%rowtype := lora_internal.job_from_request_headers();
begin
  if j.id is null then
    return false;
  end if;
  return exists (select 1 from public.datasets d
                  where d.id = j.dataset_id and d.storage_bucket = 'lora-datasets' and d.storage_path = object_name);
end
$$;

create or replace function lora_internal.job_token_can_write_model(object_name text) returns boolean
language plpgsql stable security definer set search_path = '' as $$
declare j public.training_jobs%rowtype := lora_internal.job_from_request_headers();
begin
  if j.id is null or object_name is null then
    return false;
  end if;
  -- 74 = length of '<uuid>/<uuid>/'; '..' is refused outright so no name can climb out of the prefix.
  return left(object_name, 74) = j.user_id::text || '/' || j.id::text || '/'
     and length(object_name) > 74
     and position('..' in object_name) = 0;
end
$$;

revoke all on function lora_internal.job_for_token(uuid, text, boolean) from public;
revoke all on function lora_internal.job_from_request_headers() from public;
revoke all on function lora_internal.job_token_can_read_dataset(text) from public;
revoke all on function lora_internal.job_token_can_write_model(text) from public;
grant execute on function lora_internal.job_token_can_read_dataset(text) to anon, authenticated, service_role;
grant execute on function lora_internal.job_token_can_write_model(text) to anon, authenticated, service_role;

drop policy if exists lora_datasets_job_token_select on storage.objects;
create policy lora_datasets_job_token_select on storage.objects for select to anon
  using (bucket_id = 'lora-datasets' and lora_internal.job_token_can_read_dataset(name));
drop policy if exists lora_models_job_token_insert on storage.objects;
create policy lora_models_job_token_insert on storage.objects for insert to anon
  with check (bucket_id = 'lora-models' and lora_internal.job_token_can_write_model(name));
-- Upserts and resumed uploads of the job's own files also need SELECT and UPDATE (research §5.7).
drop policy if exists lora_models_job_token_select on storage.objects;
create policy lora_models_job_token_select on storage.objects for select to anon
  using (bucket_id = 'lora-models' and lora_internal.job_token_can_write_model(name));
drop policy if exists lora_models_job_token_update on storage.objects;
create policy lora_models_job_token_update on storage.objects for update to anon
  using (bucket_id = 'lora-models' and lora_internal.job_token_can_write_model(name))
  with check (bucket_id = 'lora-models' and lora_internal.job_token_can_write_model(name));

-- The job's configuration, for the pod program. A holder of the right token of an ENDED job learns only
-- that it ended (so a restarted container exits without training again).
create or replace function public.pod_get_job(job_id uuid, job_token text) returns jsonb
language plpgsql stable security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_token(pod_get_job.job_id, pod_get_job.job_token, true);
  d public.datasets%rowtype;
begin
  if j.status in ('succeeded', 'failed', 'cancelled') then
    return jsonb_build_object('id', j.id, 'status', j.status, 'status_reason', j.status_reason);
  end if;
  select * into d from public.datasets where id = j.dataset_id;
  return jsonb_build_object(
    'id', j.id, 'user_id', j.user_id, 'name', j.name, 'status', j.status, 'attempt', j.attempt,
    'base_model', j.base_model, 'preset', j.preset, 'hyperparameters', j.hyperparameters,
    'max_runtime_seconds', j.max_runtime_seconds, 'progress', j.progress,
    'dataset', jsonb_build_object('id', d.id, 'name', d.name, 'format', d.format, 'bucket', d.storage_bucket,
                                  'path', d.storage_path, 'file_name', d.file_name, 'sha256', d.sha256,
                                  'size_bytes', d.size_bytes, 'num_examples', d.num_examples),
    'models_prefix', j.user_id::text || '/' || j.id::text || '/');
end
$$;

-- Liveness and progress; tells the pod whether a cancel was requested.
create or replace function public.pod_heartbeat(job_id uuid, job_token text, progress jsonb default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_token(pod_heartbeat.job_id, pod_heartbeat.job_token);
begin
  update public.training_jobs t
     set heartbeat_at = now(),
         progress = case when jsonb_typeof(pod_heartbeat.progress) = 'object'
                         then t.progress || pod_heartbeat.progress else t.progress end
   where t.id = j.id;
  return jsonb_build_object('status', j.status, 'cancel_requested', j.status = 'cancelling',
                            'server_time', now());
end
$$;

-- The pod-side states: running, uploading, succeeded, failed (with a reason), cancelled (after a cancel).
create or replace function public.pod_set_status(
  job_id uuid, job_token text, status text, reason text default null, message text default null,
  error jsonb default null, progress jsonb default null
) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_token(pod_set_status.job_id, pod_set_status.job_token);
  target text := pod_set_status.status;
begin
  if target not in ('running', 'uploading', 'succeeded', 'failed', 'cancelled') then
    raise exception 'a pod may report running, uploading, succeeded, failed or cancelled, not %', target
      using errcode = '22023';
  end if;
  if target = 'cancelled' and j.status <> 'cancelling' then
    raise exception 'a pod may report cancelled only after a cancel was requested' using errcode = 'LP001';
  end if;
  update public.training_jobs t
     set status = target,
         status_reason = case when target in ('failed', 'cancelled') then pod_set_status.reason else t.status_reason end,
         error = coalesce(pod_set_status.error, t.error),
         progress = case when jsonb_typeof(pod_set_status.progress) = 'object'
                         then t.progress || pod_set_status.progress else t.progress end,
         heartbeat_at = now()
   where t.id = j.id;
  if pod_set_status.message is not null then
    insert into public.job_events (job_id, user_id, level, kind, message, data)
    values (j.id, j.user_id, case when target = 'failed' then 'error' else 'info' end, 'pod',
            left(pod_set_status.message, 20000), pod_set_status.error);
  end if;
  return target;
end
$$;

create or replace function public.pod_log_event(
  job_id uuid, job_token text, level text, kind text, message text, data jsonb default null
) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_token(pod_log_event.job_id, pod_log_event.job_token);
begin
  insert into public.job_events (job_id, user_id, level, kind, message, data)
  values (j.id, j.user_id,
          case when pod_log_event.level in ('debug', 'info', 'warning', 'error') then pod_log_event.level else 'info' end,
          left(coalesce(nullif(pod_log_event.kind, ''), 'pod'), 100), left(pod_log_event.message, 20000),
          pod_log_event.data);
end
$$;

create or replace function public.pod_register_artifact(
  job_id uuid, job_token text, storage_path text, files jsonb, size_bytes bigint, sha256 text,
  adapter_config jsonb default null
) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_token(pod_register_artifact.job_id,
                                                                pod_register_artifact.job_token);
  prefix text := j.user_id::text || '/' || j.id::text || '/';
  artifact_id uuid;
begin
  if left(pod_register_artifact.storage_path, length(prefix)) <> prefix
     or position('..' in pod_register_artifact.storage_path) > 0 then
    raise exception 'artifacts of this job must live under lora-models/%', prefix using errcode = '42501';
  end if;
  if jsonb_typeof(pod_register_artifact.files) <> 'array' then
    raise exception 'files must be a JSON array of {name, size, sha256}' using errcode = '22023';
  end if;
  insert into public.model_artifacts as a (job_id, user_id, storage_path, files, size_bytes, sha256, adapter_config)
  values (j.id, j.user_id, pod_register_artifact.storage_path, pod_register_artifact.files,
          pod_register_artifact.size_bytes, pod_register_artifact.sha256, pod_register_artifact.adapter_config)
  on conflict on constraint model_artifacts_job_id_storage_path_key do update
    set files = excluded.files, size_bytes = excluded.size_bytes, sha256 = excluded.sha256,
        adapter_config = excluded.adapter_config
  returning a.id into artifact_id;
  return artifact_id;
end
$$;

revoke all on function public.pod_get_job(uuid, text) from public, anon, authenticated;
revoke all on function public.pod_heartbeat(uuid, text, jsonb) from public, anon, authenticated;
revoke all on function public.pod_set_status(uuid, text, text, text, text, jsonb, jsonb) from public, anon, authenticated;
revoke all on function public.pod_log_event(uuid, text, text, text, text, jsonb) from public, anon, authenticated;
revoke all on function public.pod_register_artifact(uuid, text, text, jsonb, bigint, text, jsonb)
  from public, anon, authenticated;
grant execute on function public.pod_get_job(uuid, text) to anon, authenticated, service_role;
grant execute on function public.pod_heartbeat(uuid, text, jsonb) to anon, authenticated, service_role;
grant execute on function public.pod_set_status(uuid, text, text, text, text, jsonb, jsonb)
  to anon, authenticated, service_role;
grant execute on function public.pod_log_event(uuid, text, text, text, text, jsonb) to anon, authenticated, service_role;
grant execute on function public.pod_register_artifact(uuid, text, text, jsonb, bigint, text, jsonb)
  to anon, authenticated, service_role;
