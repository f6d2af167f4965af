-- Tenant isolation under the service role (issue 12). Service-side code bypasses RLS, so every value it acts
-- on must be one a user could not have forged into pointing at someone else:
--   * datasets: the object lives in the owner's folder (CHECK), and what identifies the object (path, name,
--     size, hash) is frozen once the upload finished (trigger), so job tokens and download grants can trust it;
--   * training_jobs: users update only the name; status, pod, price, token and progress columns change through
--     the control functions below (owner or service role), each checking what it writes;
--   * cost_records: computed in SQL from the job's own rate and the database clock, never written by users;
--   * validation_results: written only by record_gate_result, which re-derives every condition's outcome and
--     the decision from the owner's conditions and the stored metrics;
--   * metrics_points / job progress: bounded, so no stored row can break a reader.

-- ---------------------------------------------------------------- who is calling
-- Inside a SECURITY DEFINER function current_user is the function's owner, so the caller is read from what
-- the gateway set for the request (the JWT's role) and from the session's SET ROLE; a superuser session
-- without a role (migrations, psql) counts as the service.
create or replace function lora_internal.caller_is_service() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', '') = 'service_role'
      or current_setting('role') = 'service_role'
      or (current_setting('role') = 'none'
          and coalesce((select rolsuper from pg_catalog.pg_roles where rolname = session_user), false))
$$;
revoke all on function lora_internal.caller_is_service() from public;
grant execute on function lora_internal.caller_is_service() to anon, authenticated, service_role;

-- The job, for a control action by its owner or by the service role; one error for "absent" and "not yours".
create or replace function lora_internal.job_for_controller(p_job_id uuid) returns public.training_jobs
language plpgsql stable security definer set search_path = '' as $$
declare j public.training_jobs%rowtype;
begin
  select * into j from public.training_jobs t where t.id = p_job_id;
  if not found or not (lora_internal.caller_is_service() or j.user_id = (select auth.uid())) then
    raise exception 'job % not found (or not visible to this role)', p_job_id
      using errcode = 'PT404', hint = 'Check the job id and that you are signed in as its owner.';
  end if;
  return j;
end
$$;
revoke all on function lora_internal.job_for_controller(uuid) from public;

-- ---------------------------------------------------------------- datasets
alter table public.datasets drop constraint if exists datasets_storage_path_in_owner_folder;
alter table public.datasets add constraint datasets_storage_path_in_owner_folder check (
  storage_path is null
  or (left(storage_path, 37) = user_id::text || '/'
      and char_length(storage_path) between 38 and 1024
      and storage_path !~ '(^|/)\.\.?(/|$)'
      and storage_path !~ '[\\[:cntrl:]]'
      and storage_path !~ '//'));
alter table public.datasets drop constraint if exists datasets_file_name_is_a_plain_name;
alter table public.datasets add constraint datasets_file_name_is_a_plain_name check (
  file_name is null
  or (char_length(file_name) between 1 and 255
      and file_name not in ('.', '..')
      and file_name !~ '[/\\[:cntrl:]]'));
alter table public.datasets drop constraint if exists datasets_storage_bucket_is_datasets;
alter table public.datasets add constraint datasets_storage_bucket_is_datasets check (storage_bucket = 'lora-datasets');

create or replace function lora_internal.guard_dataset_update() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.user_id is distinct from old.user_id then
    raise exception 'a dataset keeps its owner' using errcode = '42501';
  end if;
  if lora_internal.caller_is_service() then
    return new;
  end if;
  if old.status <> 'uploading' and (
       new.storage_bucket is distinct from old.storage_bucket or new.storage_path is distinct from old.storage_path
       or new.file_name is distinct from old.file_name or new.size_bytes is distinct from old.size_bytes
       or new.sha256 is distinct from old.sha256 or new.status = 'uploading') then
    raise exception 'dataset %: its object (path, file name, size, SHA-256) cannot change once uploaded', old.id
      using errcode = '42501', hint = 'Upload the new file as a new dataset.';
  end if;
  return new;
end
$$;
revoke all on function lora_internal.guard_dataset_update() from public;
drop trigger if exists guard_dataset_update on public.datasets;
create trigger guard_dataset_update before update on public.datasets
  for each row execute function lora_internal.guard_dataset_update();

revoke update on public.datasets from authenticated;
grant update (name, description, format, storage_path, file_name, size_bytes, sha256, num_examples, token_stats,
              status, validation_report, upload_url)
  on public.datasets to authenticated;

-- A job token reads only its job's dataset, and only when job and dataset have one owner.
create or replace function lora_internal.job_token_can_read_dataset(object_name text) returns boolean
language plpgsql stable security definer set search_path = '' as $$
declare j public.training_jobs%rowtype := lora_internal.job_from_request_headers();
begin
  if j.id is null then
    return false;
  end if;
  return exists (select 1 from public.datasets d
                  where d.id = j.dataset_id and d.user_id = j.user_id and d.status = 'ready'
                    and d.storage_bucket = 'lora-datasets' and d.storage_path = object_name);
end
$$;

-- ---------------------------------------------------------------- download grants
-- A grant dies with its token: revocation stops it, and it never outlives the token's own expiry.
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
      join public.datasets d on d.id = t.dataset_id and d.user_id = t.user_id
     where t.grant_hash = encode(sha256(convert_to(presented, 'UTF8')), 'hex')
       and t.grant_expires_at > now()
       and t.expires_at > now()
       and t.revoked_at is null
       and d.status = 'ready'
       and d.storage_bucket = 'lora-datasets'
       and d.storage_path = object_name);
end
$$;

create or replace function lora_internal.cap_download_grant() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.grant_expires_at is not null and new.grant_expires_at > new.expires_at then
    new.grant_expires_at := new.expires_at;
  end if;
  return new;
end
$$;
revoke all on function lora_internal.cap_download_grant() from public;
drop trigger if exists cap_download_grant on public.dataset_download_tokens;
create trigger cap_download_grant before insert or update on public.dataset_download_tokens
  for each row execute function lora_internal.cap_download_grant();

-- ---------------------------------------------------------------- training_jobs: control functions
revoke update on public.training_jobs from authenticated;
grant update (name) on public.training_jobs to authenticated;

-- Moves the control plane (the owner's process or the service) may make; running, uploading and succeeded
-- are the pod's to report, gate_failed the gate's.
create or replace function public.job_move(
  job_id uuid, status text, reason text default null, error jsonb default null, backend text default null
) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_controller(job_move.job_id);
  target text := job_move.status;
begin
  if target not in ('validating', 'queued', 'provisioning', 'failed', 'cancelling', 'cancelled') then
    raise exception 'the control plane may move a job to validating, queued, provisioning, failed, cancelling or cancelled, not %', target
      using errcode = '22023', hint = 'running, uploading and succeeded are reported by the pod with its job token.';
  end if;
  if target = 'failed' and job_move.reason is not distinct from 'gate_failed' then
    raise exception 'gate_failed is recorded by the gate (record_gate_result)' using errcode = '42501';
  end if;
  if job_move.backend is not null and (target <> 'provisioning' or job_move.backend not in ('local', 'runpod')) then
    raise exception 'backend is set when provisioning, to local or runpod' using errcode = '22023';
  end if;
  if job_move.error is not null and (jsonb_typeof(job_move.error) <> 'object' or length(job_move.error::text) > 20000) then
    raise exception 'error must be a JSON object of at most 20000 characters' using errcode = '22023';
  end if;
  update public.training_jobs t
     set status = target,
         status_reason = case when target in ('failed', 'cancelled') then job_move.reason else t.status_reason end,
         error = coalesce(job_move.error, t.error),
         backend = coalesce(job_move.backend, t.backend)
   where t.id = j.id
  returning * into j;
  return to_jsonb(j);
end
$$;

-- What the launcher learned from the backend: the pod's id, GPU and price, once per attempt.
create or replace function public.job_record_launch(
  job_id uuid, pod_id text, gpu_type text default null, cost_per_hour numeric default null
) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare j public.training_jobs%rowtype := lora_internal.job_for_controller(job_record_launch.job_id);
begin
  if j.status <> 'provisioning' then
    raise exception 'job % is %: a pod is recorded while the job is provisioning', j.id, j.status using errcode = 'LP001';
  end if;
  -- Write-once per attempt: the cost record of this attempt exists once a launch was recorded.
  if j.pod_id is not null and j.pod_id is distinct from job_record_launch.pod_id
     and exists (select 1 from public.cost_records c where c.job_id = j.id and c.attempt = j.attempt) then
    raise exception 'job % already has pod % for attempt %', j.id, j.pod_id, j.attempt using errcode = 'LP001';
  end if;
  if job_record_launch.pod_id !~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$' then
    raise exception 'a pod id is 1-128 letters, digits, - or _' using errcode = '22023';
  end if;
  if job_record_launch.gpu_type is not null and job_record_launch.gpu_type !~ '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$' then
    raise exception 'a GPU type is 1-100 letters, digits, spaces, . - or _' using errcode = '22023';
  end if;
  if job_record_launch.cost_per_hour is not null and not (job_record_launch.cost_per_hour between 0 and 10000) then
    raise exception 'cost_per_hour must be between 0 and 10000 USD' using errcode = '22023';
  end if;
  update public.training_jobs t
     set pod_id = job_record_launch.pod_id,
         gpu_type = coalesce(job_record_launch.gpu_type, t.gpu_type),
         cost_per_hour = job_record_launch.cost_per_hour
   where t.id = j.id
  returning * into j;
  insert into public.cost_records (job_id, user_id, attempt, gpu_type, hourly_rate, seconds, amount_usd, started_at)
  values (j.id, j.user_id, j.attempt, j.gpu_type, coalesce(j.cost_per_hour, 0), 0, 0, now())
  on conflict on constraint cost_records_job_id_attempt_key do update
    set gpu_type = excluded.gpu_type, hourly_rate = excluded.hourly_rate, started_at = excluded.started_at,
        ended_at = null, seconds = 0, amount_usd = 0;
  return to_jsonb(j);
end
$$;

-- Stores the hash of a new job token; its life is bounded by the job's runtime limit plus a day.
create or replace function public.job_set_token(job_id uuid, token_hash text, expires_at timestamptz) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare j public.training_jobs%rowtype := lora_internal.job_for_controller(job_set_token.job_id);
begin
  if j.status in ('succeeded', 'failed', 'cancelled') then
    raise exception 'job % has ended (%); tokens of ended jobs are dead', j.id, j.status using errcode = 'LP001';
  end if;
  if job_set_token.token_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'token_hash must be a hex SHA-256' using errcode = '22023';
  end if;
  if not (job_set_token.expires_at > now()
          and job_set_token.expires_at <= now() + make_interval(secs => j.max_runtime_seconds) + interval '1 day') then
    raise exception 'a job token expires in the future and at most a day after the job''s runtime limit'
      using errcode = '22023';
  end if;
  update public.training_jobs t
     set job_token_hash = job_set_token.token_hash, job_token_expires_at = job_set_token.expires_at
   where t.id = j.id;
end
$$;

-- The job's cost from its own rate and the database clock: this attempt's record is brought up to date,
-- the total over every attempt returned (USD).
create or replace function public.job_account_cost(job_id uuid) returns numeric
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_controller(job_account_cost.job_id);
  total numeric;
begin
  update public.cost_records c
     set seconds = round(extract(epoch from greatest(coalesce(j.finished_at, now()) - c.started_at, interval '0'))::numeric, 3),
         hourly_rate = coalesce(j.cost_per_hour, c.hourly_rate),
         amount_usd = round(extract(epoch from greatest(coalesce(j.finished_at, now()) - c.started_at, interval '0'))::numeric
                            / 3600 * coalesce(j.cost_per_hour, c.hourly_rate), 6),
         ended_at = j.finished_at
   where c.job_id = j.id and c.attempt = j.attempt and c.started_at is not null;
  select coalesce(sum(amount_usd), 0) into total from public.cost_records c where c.job_id = j.id;
  return total;
end
$$;

revoke insert, update on public.cost_records from authenticated;
drop policy if exists cost_records_owner_insert on public.cost_records;
drop policy if exists cost_records_owner_update on public.cost_records;

-- A JSON value a pod sent, kept when it is an object of at most max_chars characters; otherwise a marker
-- that says what was dropped (readers expect objects; a runaway payload must not grow a row without bound).
create or replace function lora_internal.bounded_json(value jsonb, max_chars integer) returns jsonb
language sql immutable set search_path = '' as $$
  select case when value is null then null
              when jsonb_typeof(value) = 'object' and length(value::text) <= max_chars then value
              else jsonb_build_object('dropped', format('a %s of %s characters (at most an object of %s)',
                                                         jsonb_typeof(value), length(value::text), max_chars))
         end
$$;
revoke all on function lora_internal.bounded_json(jsonb, integer) from public;
grant execute on function lora_internal.bounded_json(jsonb, integer) to anon, authenticated, service_role;

create or replace function lora_internal.bound_pod_json() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_table_name = 'training_jobs' then
    new.error := lora_internal.bounded_json(new.error, 20000);
  elsif tg_table_name = 'job_events' then
    new.data := lora_internal.bounded_json(new.data, 20000);
  elsif tg_table_name = 'model_artifacts' then
    new.adapter_config := lora_internal.bounded_json(new.adapter_config, 65536);
  end if;
  return new;
end
$$;
revoke all on function lora_internal.bound_pod_json() from public;
drop trigger if exists bound_pod_json on public.training_jobs;
create trigger bound_pod_json before insert or update of error on public.training_jobs
  for each row execute function lora_internal.bound_pod_json();
drop trigger if exists bound_pod_json on public.job_events;
create trigger bound_pod_json before insert on public.job_events
  for each row execute function lora_internal.bound_pod_json();
drop trigger if exists bound_pod_json on public.model_artifacts;
create trigger bound_pod_json before insert or update of adapter_config on public.model_artifacts
  for each row execute function lora_internal.bound_pod_json();

-- A pod's progress is an object of bounded size; anything else is ignored rather than stored.
create or replace function lora_internal.bounded_progress(current_progress jsonb, incoming jsonb) returns jsonb
language sql immutable set search_path = '' as $$
  select case when jsonb_typeof(incoming) = 'object' and length(incoming::text) <= 16384
                   and length((current_progress || incoming)::text) <= 65536
              then current_progress || incoming else current_progress end
$$;
revoke all on function lora_internal.bounded_progress(jsonb, jsonb) from public;

create or replace function public.pod_heartbeat(job_id uuid, job_token text, progress jsonb default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_token(pod_heartbeat.job_id, pod_heartbeat.job_token);
begin
  update public.training_jobs t
     set heartbeat_at = now(), progress = lora_internal.bounded_progress(t.progress, pod_heartbeat.progress)
   where t.id = j.id;
  return jsonb_build_object('status', j.status, 'cancel_requested', j.status = 'cancelling',
                            'server_time', now());
end
$$;

revoke all on function public.job_move(uuid, text, text, jsonb, text) from public, anon, authenticated;
revoke all on function public.job_record_launch(uuid, text, text, numeric) from public, anon, authenticated;
revoke all on function public.job_set_token(uuid, text, timestamptz) from public, anon, authenticated;
revoke all on function public.job_account_cost(uuid) from public, anon, authenticated;
grant execute on function public.job_move(uuid, text, text, jsonb, text) to authenticated, service_role;
grant execute on function public.job_record_launch(uuid, text, text, numeric) to authenticated, service_role;
grant execute on function public.job_set_token(uuid, text, timestamptz) to authenticated, service_role;
grant execute on function public.job_account_cost(uuid) to authenticated, service_role;

-- ---------------------------------------------------------------- metrics: bounded values
-- A timestamp a reader can parse (finite, within a day of now when the pod sends it); the pod's other values
-- are float8 or JSON already, and NaN / ±Infinity are legal metric values.
update public.metrics_points set recorded_at = now()
 where not isfinite(recorded_at) or recorded_at < '2000-01-01' or recorded_at > now() + interval '1 day';
alter table public.metrics_points drop constraint if exists metrics_points_recorded_at_readable;
alter table public.metrics_points add constraint metrics_points_recorded_at_readable
  check (isfinite(recorded_at) and recorded_at >= '2000-01-01' and recorded_at < '9000-01-01');
alter table public.metrics_points drop constraint if exists metrics_points_extra_is_object;
alter table public.metrics_points add constraint metrics_points_extra_is_object
  check (jsonb_typeof(extra) = 'object');

create or replace function lora_internal.bound_metric_point() returns trigger
language plpgsql set search_path = '' as $$
begin
  if not isfinite(new.recorded_at) or new.recorded_at < now() - interval '30 days'
     or new.recorded_at > now() + interval '1 day' then
    new.recorded_at := now();
  end if;
  if new.epoch is null or new.epoch <> new.epoch or new.epoch in ('Infinity'::float8, '-Infinity'::float8) then
    new.epoch := 0;
  end if;
  new.extra := lora_internal.bounded_json(new.extra, 65536);
  return new;
end
$$;
revoke all on function lora_internal.bound_metric_point() from public;
drop trigger if exists bound_metric_point on public.metrics_points;
create trigger bound_metric_point before insert or update on public.metrics_points
  for each row execute function lora_internal.bound_metric_point();

-- ---------------------------------------------------------------- gates: only the gate writes results
-- The gate's arithmetic runs in Python (lora_pipeline.gates.evaluate, which also writes the messages); the
-- record is accepted only when SQL, reading the same rows, reaches the same outcome for every condition.
-- So no caller can record a decision its owner's conditions and the stored metrics do not support, and
-- every input (conditions, champion, baseline jobs) is the job owner's own.

create or replace function lora_internal.json_float(v jsonb) returns double precision
language plpgsql immutable set search_path = '' as $$
begin
  if jsonb_typeof(v) = 'number' then
    begin
      return (v #>> '{}')::double precision;
    exception when numeric_value_out_of_range then
      return case when abs((v #>> '{}')::numeric) < 1 then 0::double precision
                  when (v #>> '{}')::numeric > 0 then 'Infinity'::double precision
                  else '-Infinity'::double precision end;
    end;
  elsif jsonb_typeof(v) = 'string' and v #>> '{}' in ('NaN', 'Infinity', '-Infinity') then
    return (v #>> '{}')::double precision;
  end if;
  return null;
end
$$;

create or replace function lora_internal.metric_aggregate(p_job_id uuid, p_metric text, p_how text)
returns double precision
language sql stable set search_path = '' as $$
  with v as (
    select m.step,
           lora_internal.json_float(case when p_metric in ('train_loss', 'eval_loss', 'perplexity', 'learning_rate',
                                                           'grad_norm', 'tokens_per_second', 'gpu_memory_gb')
                                         then to_jsonb(m) -> p_metric else m.extra -> p_metric end) as x
      from public.metrics_points m where m.job_id = p_job_id)
  select case p_how
    when 'last' then (select x from v where x is not null order by step desc limit 1)
    when 'min' then (select coalesce(min(x) filter (where x <> 'NaN'::double precision),
                                     case when count(x) > 0 then 'NaN'::double precision end) from v)
    when 'max' then (select coalesce(max(x) filter (where x <> 'NaN'::double precision),
                                     case when count(x) > 0 then 'NaN'::double precision end) from v)
  end
$$;

create or replace function lora_internal.is_finite(x double precision) returns boolean
language sql immutable set search_path = '' as $$
  select x is not null and x <> 'NaN'::double precision and x not in ('Infinity'::double precision, '-Infinity'::double precision)
$$;

-- math.isclose(a, b, rel_tol=1e-9), the tolerance the Python gate applies at a bound.
create or replace function lora_internal.near(a double precision, b double precision) returns boolean
language sql immutable set search_path = '' as $$
  select a = b or (lora_internal.is_finite(a) and lora_internal.is_finite(b)
                   and abs(a - b) <= 1e-9 * greatest(abs(a), abs(b)))
$$;

create or replace function lora_internal.same_value(a double precision, b double precision) returns boolean
language sql immutable set search_path = '' as $$
  select (a is null and b is null) or coalesce(lora_internal.near(a, b), false)
$$;

-- The champion of a model for one owner: the latest job whose gate let it through and did not fail open.
create or replace function lora_internal.champion_job(p_user_id uuid, p_model_name text, p_exclude uuid)
returns uuid
language sql stable set search_path = '' as $$
  select r.job_id from public.validation_results r
   where r.user_id = p_user_id and r.model_name = p_model_name and r.decision in ('pass', 'warn')
     and r.job_id <> p_exclude and (r.summary ->> 'error') is null
   order by r.created_at desc, r.id desc
   limit 1
$$;

-- One condition's status as lora_pipeline.gates.evaluate decides it (same order of checks).
create or replace function lora_internal.gate_status(
  b public.model_baselines, actual double precision, baseline double precision, has_baseline boolean,
  candidate_sha text, baseline_sha text
) returns text
language plpgsql immutable set search_path = '' as $$
declare
  bound double precision := coalesce(b.threshold, case when b.kind = 'ratio' then 1.0 else 0.0 end);
  lower_better boolean := b.direction = 'lower_is_better';
  ratio double precision;
  passed boolean;
begin
  if actual is null then
    return 'missing_metric';
  elsif not lora_internal.is_finite(actual) then
    return 'non_finite';
  elsif b.kind = 'min' then
    passed := actual >= bound or lora_internal.near(actual, bound);
  elsif b.kind = 'max' then
    passed := actual <= bound or lora_internal.near(actual, bound);
  elsif not has_baseline or baseline is null then
    return 'missing_baseline';
  elsif not lora_internal.is_finite(baseline) then
    return 'non_finite';
  elsif candidate_sha is not null and baseline_sha is not null and candidate_sha <> baseline_sha then
    return 'incomparable';
  elsif b.kind = 'delta' then
    passed := case when lower_better then actual <= baseline + bound or lora_internal.near(actual, baseline + bound)
                   else actual >= baseline - bound or lora_internal.near(actual, baseline - bound) end;
  elsif baseline = 0 then
    return 'zero_baseline';
  else
    ratio := case when baseline > 0 then actual / baseline else 1.0 + (actual - baseline) / abs(baseline) end;
    passed := case when lower_better then ratio <= bound or lora_internal.near(ratio, bound)
                   else ratio >= bound or lora_internal.near(ratio, bound) end;
  end if;
  return case when passed then 'pass' else 'fail' end;
end
$$;

create or replace function lora_internal.gate_effect(b public.model_baselines, status text, strict boolean) returns text
language sql immutable set search_path = '' as $$
  with level as (
    select case
      when status = 'pass' then null
      when status = 'missing_metric' and b.on_missing = 'skip' then null
      when status = 'missing_metric' and b.on_missing = 'warn' then
        case when b.severity = 'info' then 'info' else 'warning' end
      when status in ('missing_baseline', 'incomparable') then case when b.severity = 'info' then 'info' else 'warning' end
      else b.severity
    end as severity)
  select case
    when severity is null or severity = 'info' then 'pass'
    when severity = 'critical' then 'block'
    when strict and status <> 'missing_baseline' then 'block'
    else 'warn' end
  from level
$$;

create or replace function public.record_gate_result(
  job_id uuid, model_name text, version text default null, strict boolean default false,
  conditions jsonb default '[]'::jsonb, summary jsonb default null, decision text default null,
  apply boolean default true
) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_controller(record_gate_result.job_id);
  p_conditions jsonb := coalesce(record_gate_result.conditions, '[]'::jsonb);
  failed_open boolean := (record_gate_result.summary ->> 'error') is not null;
  candidate_sha text;
  derived text := 'pass';
  element jsonb;
  b public.model_baselines%rowtype;
  reference uuid;
  reference_sha text;
  actual double precision;
  baseline double precision;
  has_baseline boolean;
  status text;
  effect text;
  expected_ids uuid[];
  given_ids uuid[];
  result_id uuid;
  label text := coalesce(j.name, left(j.id::text, 8));
begin
  if not (j.status = 'succeeded' or j.status_reason = 'gate_failed') then
    raise exception 'job % is %: a gate runs on a succeeded job', j.id, j.status using errcode = 'LP001';
  end if;
  if record_gate_result.model_name is null or char_length(record_gate_result.model_name) not between 1 and 200 then
    raise exception 'model_name must be 1-200 characters' using errcode = '22023';
  end if;
  if jsonb_typeof(p_conditions) <> 'array' then
    raise exception 'conditions must be a JSON array' using errcode = '22023';
  end if;
  select d.sha256 into candidate_sha from public.datasets d where d.id = j.dataset_id and d.user_id = j.user_id;
  if failed_open then
    if jsonb_array_length(p_conditions) > 0 then
      raise exception 'a gate that failed open records no condition results' using errcode = '22023';
    end if;
    derived := 'warn';
  else
    select coalesce(array_agg(m.id order by m.id), '{}') into expected_ids from public.model_baselines m
     where m.user_id = j.user_id and m.model_name = record_gate_result.model_name and m.active
       and (record_gate_result.version is null or m.version is null or m.version = record_gate_result.version);
    select coalesce(array_agg((e ->> 'condition_id')::uuid order by (e ->> 'condition_id')::uuid), '{}')
      into given_ids from jsonb_array_elements(p_conditions) e;
    if given_ids is distinct from expected_ids then
      raise exception 'the gate result must cover exactly the % active condition(s) of % for this job''s owner',
        cardinality(expected_ids), record_gate_result.model_name using errcode = '22023';
    end if;
    for element in select e from jsonb_array_elements(p_conditions) e loop
      select * into b from public.model_baselines m where m.id = (element ->> 'condition_id')::uuid;
      if element ->> 'metric' is distinct from b.metric or element ->> 'kind' is distinct from b.kind
         or element ->> 'aggregation' is distinct from b.aggregation or element ->> 'severity' is distinct from b.severity
         or element ->> 'on_missing' is distinct from b.on_missing
         or element ->> 'direction' is distinct from b.direction then
        raise exception 'condition % was recorded with other settings than it has', b.id using errcode = '22023';
      end if;
      actual := lora_internal.metric_aggregate(j.id, b.metric, b.aggregation);
      reference := null;
      reference_sha := b.eval_dataset_sha256;
      has_baseline := true;
      baseline := null;
      if b.kind in ('delta', 'ratio') then
        if b.source = 'pinned' then
          baseline := b.baseline_value;
          has_baseline := b.baseline_value is not null;
        else
          if b.source = 'champion' then
            reference := lora_internal.champion_job(j.user_id, record_gate_result.model_name, j.id);
          else
            select t.id into reference from public.training_jobs t where t.id = b.baseline_job_id and t.user_id = j.user_id;
          end if;
          has_baseline := reference is not null;
          if has_baseline then
            baseline := lora_internal.metric_aggregate(reference, b.metric, b.aggregation);
            if reference_sha is null then
              select d.sha256 into reference_sha from public.training_jobs t join public.datasets d on d.id = t.dataset_id
               where t.id = reference;
            end if;
          end if;
        end if;
        if (element ->> 'baseline_job_id') is distinct from reference::text then
          raise exception 'condition %: the baseline must be the owner''s % job %', b.id, b.source,
            coalesce(reference::text, '(none yet)') using errcode = '22023';
        end if;
      end if;
      if not lora_internal.same_value(actual, lora_internal.json_float(element -> 'actual')) then
        raise exception 'condition %: recorded value % is not the job''s % of % (%)', b.id, element -> 'actual',
          b.aggregation, b.metric, actual using errcode = '22023';
      end if;
      status := lora_internal.gate_status(b, actual, baseline, has_baseline, candidate_sha, reference_sha);
      effect := lora_internal.gate_effect(b, status, coalesce(record_gate_result.strict, false));
      if element ->> 'status' is distinct from status or element ->> 'effect' is distinct from effect then
        raise exception 'condition %: recorded % / % but the stored metrics give % / %', b.id, element ->> 'status',
          element ->> 'effect', status, effect using errcode = '22023';
      end if;
      derived := case when effect = 'block' or derived = 'block' then 'block'
                      when effect = 'warn' or derived = 'warn' then 'warn' else 'pass' end;
    end loop;
  end if;
  if record_gate_result.decision is not null and record_gate_result.decision is distinct from derived then
    raise exception 'the recorded decision % is not the one the conditions give (%)', record_gate_result.decision, derived
      using errcode = '22023';
  end if;
  insert into public.validation_results (job_id, user_id, model_name, version, decision, strict, conditions, summary,
                                         eval_dataset_sha256)
  values (j.id, j.user_id, record_gate_result.model_name, record_gate_result.version, derived,
          coalesce(record_gate_result.strict, false), p_conditions, record_gate_result.summary, candidate_sha)
  returning id into result_id;
  if derived <> 'pass' then
    insert into public.notifications (user_id, job_id, kind, severity, title, body, data)
    values (j.user_id, j.id, case when derived = 'block' then 'gate_block' else 'gate_warn' end,
            case when derived = 'block' then 'critical' else 'warning' end,
            format('Gate %s %s (job %s)', case when derived = 'block' then 'blocked' else 'warned about' end,
                   record_gate_result.model_name, label),
            left(coalesce(record_gate_result.summary ->> 'text', record_gate_result.summary ->> 'error', derived), 20000),
            jsonb_build_object('decision', derived));
  end if;
  if derived = 'block' and j.status = 'succeeded' and coalesce(record_gate_result.apply, true) then
    update public.training_jobs t
       set status = 'failed', status_reason = 'gate_failed',
           error = jsonb_build_object('reason', 'gate_failed',
                                      'message', coalesce(record_gate_result.summary ->> 'text', 'the regression gate blocked'))
     where t.id = j.id;
  end if;
  return jsonb_build_object('id', result_id, 'decision', derived);
end
$$;

revoke all on function lora_internal.json_float(jsonb) from public;
revoke all on function lora_internal.metric_aggregate(uuid, text, text) from public;
revoke all on function lora_internal.champion_job(uuid, text, uuid) from public;
revoke all on function lora_internal.gate_status(public.model_baselines, double precision, double precision, boolean,
                                                 text, text) from public;
revoke all on function lora_internal.gate_effect(public.model_baselines, text, boolean) from public;
revoke all on function public.record_gate_result(uuid, text, text, boolean, jsonb, jsonb, text, boolean)
  from public, anon, authenticated;
grant execute on function public.record_gate_result(uuid, text, text, boolean, jsonb, jsonb, text, boolean)
  to authenticated, service_role;

revoke insert on public.validation_results from authenticated;
drop policy if exists validation_results_owner_insert on public.validation_results;

-- ---------------------------------------------------------------- one owner per job and dataset
-- Declared, so it holds for every writer (the service role too) and is checked after RLS has spoken.
create unique index if not exists datasets_id_user_id_key on public.datasets (id, user_id);
alter table public.training_jobs drop constraint if exists training_jobs_dataset_same_owner;
alter table public.training_jobs add constraint training_jobs_dataset_same_owner
  foreign key (dataset_id, user_id) references public.datasets (id, user_id) on delete restrict;

-- ---------------------------------------------------------------- redeem: the token's expiry travels along
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
         grant_expires_at = least(now() + interval '2 minutes', expires_at)
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
  select * into d from public.datasets where id = t.dataset_id and user_id = t.user_id;
  return jsonb_build_object(
    'dataset_id', d.id, 'name', d.name, 'format', d.format, 'bucket', d.storage_bucket,
    'path', d.storage_path, 'file_name', d.file_name, 'size_bytes', d.size_bytes, 'sha256', d.sha256,
    'num_examples', d.num_examples, 'grant', download_grant, 'grant_expires_at', t.grant_expires_at,
    'token_expires_at', t.expires_at);
end
$$;

-- ---------------------------------------------------------------- artifacts: plain relative file names
create or replace function lora_internal.artifact_files_are_plain(files jsonb) returns boolean
language sql immutable set search_path = '' as $$
  select jsonb_typeof(files) = 'array'
     and not exists (
       select 1 from jsonb_array_elements(files) f
        where jsonb_typeof(f) <> 'object' or jsonb_typeof(f -> 'name') <> 'string'
           or char_length(f ->> 'name') not between 1 and 500
           or (f ->> 'name') ~ '(^|/)\.\.?(/|$)' or (f ->> 'name') ~ '^/' or (f ->> 'name') ~ '[\\[:cntrl:]]'
           or (f ->> 'name') ~ '//')
$$;
revoke all on function lora_internal.artifact_files_are_plain(jsonb) from public;
grant execute on function lora_internal.artifact_files_are_plain(jsonb) to anon, authenticated, service_role;
alter table public.model_artifacts drop constraint if exists model_artifacts_files_are_plain;
alter table public.model_artifacts add constraint model_artifacts_files_are_plain
  check (lora_internal.artifact_files_are_plain(files));
