-- Natural keys and job deletion (issue 14).
--   * datasets: a user's dataset names are unique, so uploading under a taken name is a Conflict (23505), and the
--     SDK can return the existing dataset when the same file comes again;
--   * model_baselines: one active condition per (model, version, metric, kind, aggregation, baseline, severity), so
--     creating the same condition again finds it instead of adding an identical twin;
--   * training_jobs: deleting a job that a condition uses as its fixed baseline is refused with a message that
--     names the condition (the foreign key's "set null" would otherwise break the source check with a raw error).

-- ---------------------------------------------------------------- datasets (user_id, name)
-- Earlier duplicates keep their rows; all but the oldest get the id's first 8 characters appended to the name.
with ranked as (
  select id, row_number() over (partition by user_id, name order by created_at, id) as n
  from public.datasets
)
update public.datasets d
   set name = left(d.name, 190) || ' (' || left(d.id::text, 8) || ')'
  from ranked r
 where r.id = d.id and r.n > 1;

create unique index if not exists datasets_user_name_key on public.datasets (user_id, name);

-- ---------------------------------------------------------------- model_baselines: one active condition per key
-- Earlier identical twins are deactivated (kept for history), the newest stays active.
with ranked as (
  select id,
         row_number() over (
           partition by user_id, model_name, coalesce(version, ''), metric, kind, aggregation, source,
                        coalesce(baseline_job_id::text, ''), severity
           order by created_at desc, id desc) as n
  from public.model_baselines
  where active
)
update public.model_baselines b
   set active = false
  from ranked r
 where r.id = b.id and r.n > 1;

create unique index if not exists model_baselines_active_key on public.model_baselines (
  user_id, model_name, coalesce(version, ''), metric, kind, aggregation, source,
  coalesce(baseline_job_id::text, ''), severity
) where active;

-- ---------------------------------------------------------------- deleting a job that is a fixed baseline
create or replace function lora_internal.refuse_deleting_a_baseline_job() returns trigger
language plpgsql set search_path = '' as $$
-- Runs as the caller, so row-level security limits what it can see (and name) to the caller's own conditions.
declare
  b record;
begin
  select id, model_name, metric, kind into b
    from public.model_baselines
   where baseline_job_id = old.id and source = 'job' and user_id = old.user_id
   limit 1;
  if found then
    raise exception 'job % is the baseline of condition % (% % of model %)', old.id, b.id, b.metric, b.kind,
      b.model_name
      using errcode = '23503',
            hint = 'point the condition at another baseline (lp.baselines.update) or delete it, then delete the job';
  end if;
  return old;
end
$$;
revoke all on function lora_internal.refuse_deleting_a_baseline_job() from public;
grant execute on function lora_internal.refuse_deleting_a_baseline_job() to authenticated, service_role;

drop trigger if exists refuse_deleting_a_baseline_job on public.training_jobs;
create trigger refuse_deleting_a_baseline_job before delete on public.training_jobs
  for each row execute function lora_internal.refuse_deleting_a_baseline_job();
