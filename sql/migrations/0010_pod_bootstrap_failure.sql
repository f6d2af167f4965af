-- A pod whose bootstrap fails (download, hash, pip, import, the image itself) ends its job here: failed with
-- reason container_error and the last lines of its output, checked by the job token like every pod function
-- (0006). The reason is fixed in SQL, so a pod cannot claim any other outcome through this door. A job that
-- already ended keeps its outcome (the pod program's own report, or a cancel, stands): the call then only
-- answers the status, so a restarted container of an ended job learns to stop.

create or replace function public.pod_report_bootstrap_failure(
  job_id uuid, job_token text, step text, message text, output_tail text default null
) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_token(pod_report_bootstrap_failure.job_id,
                                                                pod_report_bootstrap_failure.job_token, true);
  summary text := left(coalesce(nullif(btrim(pod_report_bootstrap_failure.message), ''),
                                'the pod bootstrap failed'), 2000);
  tail text := right(coalesce(pod_report_bootstrap_failure.output_tail, ''), 8000);
  stage text := left(coalesce(pod_report_bootstrap_failure.step, ''), 200);
begin
  if j.status in ('succeeded', 'failed', 'cancelled') then
    return j.status;
  end if;
  update public.training_jobs t
     set status = 'failed',
         status_reason = 'container_error',
         error = jsonb_build_object('reason', 'container_error', 'step', stage, 'message', summary, 'output', tail),
         heartbeat_at = now()
   where t.id = j.id;
  insert into public.job_events (job_id, user_id, level, kind, message, data)
  values (j.id, j.user_id, 'error', 'bootstrap', summary || coalesce(E'\n' || nullif(tail, ''), ''),
          jsonb_build_object('step', stage));
  return 'failed';
end
$$;

revoke all on function public.pod_report_bootstrap_failure(uuid, text, text, text, text)
  from public, anon, authenticated;
grant execute on function public.pod_report_bootstrap_failure(uuid, text, text, text, text)
  to anon, authenticated, service_role;
