-- Who may touch which rows (DESIGN §3). Supabase grants ALL on new public tables to anon, authenticated and
-- service_role by default; these REVOKEs and policies are what actually decides.
--   anon:          no table privileges at all (pods go through job-token functions).
--   authenticated: only the operations each table needs, only on rows with user_id = auth.uid().
--   service_role:  everything (BYPASSRLS); server-side code only.

do $$
declare t text;
begin
  foreach t in array array['datasets', 'dataset_download_tokens', 'training_jobs', 'job_events', 'metrics_points',
                           'model_artifacts', 'cost_records', 'notifications', 'model_baselines',
                           'validation_results'] loop
    execute format('revoke all on table public.%I from anon, authenticated', t);
    execute format('grant all on table public.%I to service_role', t);
    execute format('alter table public.%I enable row level security', t);
  end loop;
end
$$;
revoke all on sequence public.job_events_id_seq from anon, authenticated;

grant select, insert, update, delete on public.datasets to authenticated;
grant select, insert, delete on public.dataset_download_tokens to authenticated;
grant update (revoked_at) on public.dataset_download_tokens to authenticated;
grant select, insert, delete on public.training_jobs to authenticated;
grant update (name, status, status_reason, backend, pod_id, gpu_type, cost_per_hour, progress, heartbeat_at,
              error, gates, max_cost_usd, job_token_hash, job_token_expires_at, started_at, finished_at)
  on public.training_jobs to authenticated;
grant select, insert on public.job_events to authenticated;
grant select on public.metrics_points to authenticated;
grant select, delete on public.model_artifacts to authenticated;
grant select, insert, update on public.cost_records to authenticated;
grant select, insert, delete on public.notifications to authenticated;
grant update (read_at) on public.notifications to authenticated;
grant select, insert, update, delete on public.model_baselines to authenticated;
grant select, insert on public.validation_results to authenticated;

-- datasets: full ownership.
drop policy if exists datasets_owner_select on public.datasets;
create policy datasets_owner_select on public.datasets for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists datasets_owner_insert on public.datasets;
create policy datasets_owner_insert on public.datasets for insert to authenticated
  with check (user_id = (select auth.uid()));
drop policy if exists datasets_owner_update on public.datasets;
create policy datasets_owner_update on public.datasets for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
drop policy if exists datasets_owner_delete on public.datasets;
create policy datasets_owner_delete on public.datasets for delete to authenticated
  using (user_id = (select auth.uid()));

-- dataset_download_tokens: issued for, revoked and deleted by the dataset's owner; redeemed by function.
drop policy if exists dataset_download_tokens_owner_select on public.dataset_download_tokens;
create policy dataset_download_tokens_owner_select on public.dataset_download_tokens for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists dataset_download_tokens_owner_insert on public.dataset_download_tokens;
create policy dataset_download_tokens_owner_insert on public.dataset_download_tokens for insert to authenticated
  with check (user_id = (select auth.uid())
              and exists (select 1 from public.datasets d where d.id = dataset_id and d.user_id = (select auth.uid())));
drop policy if exists dataset_download_tokens_owner_update on public.dataset_download_tokens;
create policy dataset_download_tokens_owner_update on public.dataset_download_tokens for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
drop policy if exists dataset_download_tokens_owner_delete on public.dataset_download_tokens;
create policy dataset_download_tokens_owner_delete on public.dataset_download_tokens for delete to authenticated
  using (user_id = (select auth.uid()));

-- training_jobs: created on the owner's own dataset; deleted only when nothing runs.
drop policy if exists training_jobs_owner_select on public.training_jobs;
create policy training_jobs_owner_select on public.training_jobs for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists training_jobs_owner_insert on public.training_jobs;
create policy training_jobs_owner_insert on public.training_jobs for insert to authenticated
  with check (user_id = (select auth.uid()) and status = 'created'
              and exists (select 1 from public.datasets d where d.id = dataset_id and d.user_id = (select auth.uid())));
drop policy if exists training_jobs_owner_update on public.training_jobs;
create policy training_jobs_owner_update on public.training_jobs for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
drop policy if exists training_jobs_owner_delete on public.training_jobs;
create policy training_jobs_owner_delete on public.training_jobs for delete to authenticated
  using (user_id = (select auth.uid()) and status in ('created', 'succeeded', 'failed', 'cancelled'));

-- job_events: the owner reads the timeline and may add to it (deploy steps run in the owner's process).
drop policy if exists job_events_owner_select on public.job_events;
create policy job_events_owner_select on public.job_events for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists job_events_owner_insert on public.job_events;
create policy job_events_owner_insert on public.job_events for insert to authenticated
  with check (user_id = (select auth.uid())
              and exists (select 1 from public.training_jobs j where j.id = job_id and j.user_id = (select auth.uid())));

-- metrics_points: read-only for owners (pods write through ingest_metrics); user_id is copied from the
-- job so this check is one index lookup however large the table grows.
drop policy if exists metrics_points_owner_select on public.metrics_points;
create policy metrics_points_owner_select on public.metrics_points for select to authenticated
  using (user_id = (select auth.uid()));

-- model_artifacts: registered by the pod's function; owners read and delete.
drop policy if exists model_artifacts_owner_select on public.model_artifacts;
create policy model_artifacts_owner_select on public.model_artifacts for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists model_artifacts_owner_delete on public.model_artifacts;
create policy model_artifacts_owner_delete on public.model_artifacts for delete to authenticated
  using (user_id = (select auth.uid()));

-- cost_records: written by the launcher (owner or service) from its own timestamps.
drop policy if exists cost_records_owner_select on public.cost_records;
create policy cost_records_owner_select on public.cost_records for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists cost_records_owner_insert on public.cost_records;
create policy cost_records_owner_insert on public.cost_records for insert to authenticated
  with check (user_id = (select auth.uid())
              and exists (select 1 from public.training_jobs j where j.id = job_id and j.user_id = (select auth.uid())));
drop policy if exists cost_records_owner_update on public.cost_records;
create policy cost_records_owner_update on public.cost_records for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

-- notifications: the owner reads, marks read, deletes, and (gates) writes their own.
drop policy if exists notifications_owner_select on public.notifications;
create policy notifications_owner_select on public.notifications for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists notifications_owner_insert on public.notifications;
create policy notifications_owner_insert on public.notifications for insert to authenticated
  with check (user_id = (select auth.uid())
              and (job_id is null or exists (select 1 from public.training_jobs j
                                             where j.id = job_id and j.user_id = (select auth.uid()))));
drop policy if exists notifications_owner_update on public.notifications;
create policy notifications_owner_update on public.notifications for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
drop policy if exists notifications_owner_delete on public.notifications;
create policy notifications_owner_delete on public.notifications for delete to authenticated
  using (user_id = (select auth.uid()));

-- model_baselines: full ownership; a baseline may only point at the owner's own job.
drop policy if exists model_baselines_owner_select on public.model_baselines;
create policy model_baselines_owner_select on public.model_baselines for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists model_baselines_owner_insert on public.model_baselines;
create policy model_baselines_owner_insert on public.model_baselines for insert to authenticated
  with check (user_id = (select auth.uid())
              and (baseline_job_id is null or exists (select 1 from public.training_jobs j
                                                      where j.id = baseline_job_id and j.user_id = (select auth.uid()))));
drop policy if exists model_baselines_owner_update on public.model_baselines;
create policy model_baselines_owner_update on public.model_baselines for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid())
              and (baseline_job_id is null or exists (select 1 from public.training_jobs j
                                                      where j.id = baseline_job_id and j.user_id = (select auth.uid()))));
drop policy if exists model_baselines_owner_delete on public.model_baselines;
create policy model_baselines_owner_delete on public.model_baselines for delete to authenticated
  using (user_id = (select auth.uid()));

-- validation_results: one row per gate run, written by whoever runs the gate for the owner.
drop policy if exists validation_results_owner_select on public.validation_results;
create policy validation_results_owner_select on public.validation_results for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists validation_results_owner_insert on public.validation_results;
create policy validation_results_owner_insert on public.validation_results for insert to authenticated
  with check (user_id = (select auth.uid())
              and exists (select 1 from public.training_jobs j where j.id = job_id and j.user_id = (select auth.uid())));
