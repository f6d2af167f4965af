-- The job lifecycle of DESIGN §5, enforced by Postgres whoever writes the row (SDK, service, pod functions).
--   created -> validating -> queued -> provisioning -> running -> uploading -> succeeded
--   any live state -> cancelling -> cancelled ; failed (with a reason) from any live state
--   provisioning/running -> queued (infra loss; attempt + 1) ; succeeded -> failed only for gate_failed

create or replace function lora_internal.allowed_job_transitions(from_status text) returns text[]
language sql immutable set search_path = '' as $$
  select case from_status
    when 'created' then array['validating', 'queued', 'failed', 'cancelled']
    when 'validating' then array['queued', 'failed', 'cancelled']
    when 'queued' then array['provisioning', 'failed', 'cancelling', 'cancelled']
    when 'provisioning' then array['running', 'queued', 'failed', 'cancelling']
    when 'running' then array['uploading', 'succeeded', 'queued', 'failed', 'cancelling']
    when 'uploading' then array['succeeded', 'failed', 'cancelling']
    when 'cancelling' then array['cancelled', 'failed']
    when 'succeeded' then array['failed']
    else array[]::text[]
  end
$$;

create or replace function lora_internal.check_job_transition() returns trigger
language plpgsql set search_path = '' as $$
declare
  allowed text[] := lora_internal.allowed_job_transitions(old.status);
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

drop trigger if exists check_job_transition on public.training_jobs;
create trigger check_job_transition before update of status, status_reason on public.training_jobs
  for each row execute function lora_internal.check_job_transition();

-- Every status change becomes a job_events row: the job's timeline.
create or replace function lora_internal.record_job_status_event() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    insert into public.job_events (job_id, user_id, level, kind, message, data)
    values (new.id, new.user_id, 'info', 'status', 'created',
            jsonb_build_object('to', new.status, 'attempt', new.attempt));
  elsif new.status is distinct from old.status then
    insert into public.job_events (job_id, user_id, level, kind, message, data)
    values (
      new.id, new.user_id,
      case when new.status = 'failed' then 'error' when new.status in ('cancelling', 'cancelled', 'queued')
           and old.status in ('provisioning', 'running') then 'warning' else 'info' end,
      'status',
      format('%s -> %s', old.status, new.status) || coalesce(' (' || new.status_reason || ')', ''),
      jsonb_build_object('from', old.status, 'to', new.status, 'reason', new.status_reason, 'attempt', new.attempt));
  end if;
  return null;
end
$$;

drop trigger if exists record_job_status_event on public.training_jobs;
create trigger record_job_status_event after insert or update of status on public.training_jobs
  for each row execute function lora_internal.record_job_status_event();

-- Users hear about terminal states (DESIGN §7, issue 7: succeeded, failed, budget stop).
create or replace function lora_internal.notify_job_finished() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  label text := coalesce(new.name, left(new.id::text, 8));
begin
  if new.status is not distinct from old.status then
    return null;
  end if;
  if new.status = 'succeeded' then
    insert into public.notifications (user_id, job_id, kind, severity, title, body, data)
    values (new.user_id, new.id, 'job_succeeded', 'info', format('Job %s succeeded', label),
            format('Training of %s finished.', new.base_model), jsonb_build_object('attempt', new.attempt));
  elsif new.status = 'failed' then
    insert into public.notifications (user_id, job_id, kind, severity, title, body, data)
    values (new.user_id, new.id,
            case when new.status_reason = 'budget_exceeded' then 'budget_stop' else 'job_failed' end,
            case when new.status_reason = 'gate_failed' then 'warning' else 'critical' end,
            case when new.status_reason = 'budget_exceeded' then format('Job %s stopped: budget exceeded', label)
                 else format('Job %s failed (%s)', label, new.status_reason) end,
            coalesce(new.error ->> 'message', 'See the job events for details.'),
            jsonb_build_object('reason', new.status_reason, 'attempt', new.attempt));
  end if;
  return null;
end
$$;

drop trigger if exists notify_job_finished on public.training_jobs;
create trigger notify_job_finished after update of status on public.training_jobs
  for each row execute function lora_internal.notify_job_finished();

revoke all on function lora_internal.allowed_job_transitions(text) from public;
revoke all on function lora_internal.check_job_transition() from public;
revoke all on function lora_internal.record_job_status_event() from public;
revoke all on function lora_internal.notify_job_finished() from public;
grant execute on function lora_internal.allowed_job_transitions(text) to anon, authenticated, service_role;
