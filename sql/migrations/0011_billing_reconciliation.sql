-- What RunPod billed for a pod, beside our own estimate (issue 15, item 7). The estimate (the job's rate x the
-- database clock, job_account_cost) stays the live figure that budgets are checked against; once a job has
-- ended, the launcher records the provider's bill for the attempt so the two can be compared.

alter table public.cost_records add column if not exists billed_usd numeric(14, 6) check (billed_usd >= 0);
alter table public.cost_records add column if not exists billed_at timestamptz;

create or replace function public.job_record_billing(job_id uuid, billed_usd numeric) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare j public.training_jobs%rowtype := lora_internal.job_for_controller(job_record_billing.job_id);
begin
  if j.status not in ('succeeded', 'failed', 'cancelled') then
    raise exception 'job % is %: a bill is recorded once the job has ended', j.id, j.status using errcode = 'LP001';
  end if;
  if job_record_billing.billed_usd is null or not (job_record_billing.billed_usd between 0 and 1000000) then
    raise exception 'billed_usd must be between 0 and 1000000' using errcode = '22023';
  end if;
  update public.cost_records c
     set billed_usd = job_record_billing.billed_usd, billed_at = now()
   where c.job_id = j.id and c.attempt = j.attempt;
end
$$;
revoke all on function public.job_record_billing(uuid, numeric) from public, anon, authenticated;
grant execute on function public.job_record_billing(uuid, numeric) to authenticated, service_role;
