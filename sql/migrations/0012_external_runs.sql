-- Runs on the user's own machine (issue 17): a job whose training happens outside any pod we launched (a GPU
-- box, a notebook, someone else's cluster scheduler). Its backend is 'external'; the process holding the job
-- token reports it like a pod does, so every move here is checked by the job token (0006), never by who
-- signed in. The state machine gains exactly one edge, created -> running, and only for external jobs (there
-- is no validating/queued/provisioning to go through: nothing is launched). Three token-checked functions:
--   run_start          created -> running (backend external); again on a running external job, a no-op;
--   run_record_config  the configuration that really ran (Trainer arguments, LoRA config) as hyperparameters;
--   run_cancel         the process was interrupted: running/uploading -> cancelling -> cancelled.
-- The pod functions of 0006/0007 (pod_heartbeat, pod_set_status, ingest_metrics, pod_register_artifact) do
-- the rest, and lp.jobs.sync marks a run whose heartbeats stopped pod_lost, as for any pod.

alter table public.training_jobs drop constraint if exists training_jobs_backend_check;
alter table public.training_jobs add constraint training_jobs_backend_check
  check (backend in ('local', 'runpod', 'external'));

-- 0002's trigger, with the one extra edge: an external job starts running straight from created.
create or replace function lora_internal.check_job_transition() returns trigger
language plpgsql set search_path = '' as $$
declare
  allowed text[] := lora_internal.allowed_job_transitions(old.status)
                    || case when old.status = 'created' and new.backend = 'external'
                            then array['running'] else array[]::text[] end;
begin
  if new.status is not distinct from old.status then
    if old.status in ('succeeded', 'failed', 'cancelled') and new.status_reason is distinct from old.status_reason then
      raise exception 'job % already ended (% / %); its outcome cannot change', old.id, old.status, old.status_reason
        using errcode = 'LP001', hint = 'a terminal job keeps the status and reason it ended with';
    end if;
    return new;
  end if;
  if not (new.status = any (allowed))
     or (old.status = 'succeeded' and new.status_reason is distinct from 'gate_failed') then
    raise exception 'cannot move job % from % to %', old.id, old.status, new.status
      using errcode = 'LP001',
            hint = case
              when old.status = 'succeeded' then 'a succeeded job can only fail its regression gate (reason gate_failed)'
              when cardinality(allowed) = 0 then format('%s is a terminal state', old.status)
              else format('from %s a job may move to: %s', old.status, array_to_string(allowed, ', '))
            end;
  end if;
  if new.status = 'queued' and old.status in ('provisioning', 'running') then
    new.attempt := old.attempt + 1;
    new.heartbeat_at := null;
  end if;
  if new.status = 'running' and new.started_at is null then
    new.started_at := now();
  end if;
  if new.status in ('succeeded', 'failed', 'cancelled') then
    new.finished_at := coalesce(new.finished_at, now());
  end if;
  if new.status <> 'failed' and new.status <> 'cancelled' and new.status <> 'queued'
     and new.status_reason is not distinct from old.status_reason then
    new.status_reason := null;
  end if;
  return new;
end
$$;
revoke all on function lora_internal.check_job_transition() from public;

-- created -> running for a job that nothing was launched for; answers the status.
create or replace function public.run_start(job_id uuid, job_token text) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare j public.training_jobs%rowtype := lora_internal.job_for_token(run_start.job_id, run_start.job_token);
begin
  if j.status = 'running' and j.backend = 'external' then
    update public.training_jobs t set heartbeat_at = now() where t.id = j.id;
    return j.status;
  end if;
  if j.status <> 'created' or j.backend is distinct from null and j.backend <> 'external' then
    raise exception 'job % is % on backend %: a run on your own machine starts from a created job nothing was launched for',
      j.id, j.status, coalesce(j.backend, 'none')
      using errcode = 'LP001', hint = 'Start a new run (lp.runs.start) or create a job and issue its token.';
  end if;
  update public.training_jobs t
     set backend = 'external', status = 'running', heartbeat_at = now()
   where t.id = j.id;
  return 'running';
end
$$;

-- What really ran replaces the preset's values; only for external runs (a pod trains what its job says).
create or replace function public.run_record_config(job_id uuid, job_token text, config jsonb) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare j public.training_jobs%rowtype := lora_internal.job_for_token(run_record_config.job_id,
                                                                      run_record_config.job_token);
begin
  if j.backend is distinct from 'external' then
    raise exception 'job % runs on %: only a run on your own machine records its configuration', j.id,
      coalesce(j.backend, 'no backend yet') using errcode = 'LP001';
  end if;
  if jsonb_typeof(run_record_config.config) is distinct from 'object' or length(run_record_config.config::text) > 65536 then
    raise exception 'config must be a JSON object of at most 65536 characters' using errcode = '22023';
  end if;
  update public.training_jobs t set hyperparameters = run_record_config.config where t.id = j.id;
end
$$;

-- The run's process was interrupted (Ctrl-C): the cancel is its own, so it is requested and done at once.
create or replace function public.run_cancel(job_id uuid, job_token text, message text default null) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare j public.training_jobs%rowtype := lora_internal.job_for_token(run_cancel.job_id, run_cancel.job_token);
begin
  if j.backend is distinct from 'external' then
    raise exception 'job % runs on %: its pod is cancelled by its owner (lp.jobs.cancel)', j.id,
      coalesce(j.backend, 'no backend yet') using errcode = 'LP001';
  end if;
  if j.status in ('running', 'uploading') then
    update public.training_jobs t set status = 'cancelling' where t.id = j.id;
  end if;
  update public.training_jobs t
     set status = 'cancelled', status_reason = 'cancelled_by_user', heartbeat_at = now()
   where t.id = j.id;
  if run_cancel.message is not null then
    insert into public.job_events (job_id, user_id, level, kind, message)
    values (j.id, j.user_id, 'warning', 'run', left(run_cancel.message, 20000));
  end if;
  return 'cancelled';
end
$$;

revoke all on function public.run_start(uuid, text) from public, anon, authenticated;
revoke all on function public.run_record_config(uuid, text, jsonb) from public, anon, authenticated;
revoke all on function public.run_cancel(uuid, text, text) from public, anon, authenticated;
grant execute on function public.run_start(uuid, text) to anon, authenticated, service_role;
grant execute on function public.run_record_config(uuid, text, jsonb) to anon, authenticated, service_role;
grant execute on function public.run_cancel(uuid, text, text) to anon, authenticated, service_role;
