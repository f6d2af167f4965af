-- Batched, idempotent metrics ingest for pods (DESIGN §6). One call per batch of up to 1000 points:
--   * the job token is checked once, by primary key;
--   * points merge into (job_id, step) column by column: a value present replaces the stored one, an absent
--     value keeps it, so the eval row logged at step N does not erase the train loss logged at step N, within
--     one batch as across batches; `extra` objects are merged key by key;
--   * unknown top-level keys go to `extra`; epoch defaults to 0; "NaN", "Infinity", "-Infinity" strings are
--     stored as those float8 values;
--   * replaying a batch changes nothing (upsert), so a spool can be re-sent safely.
-- Returns the number of (job_id, step) rows written. The anon role needs no table privilege for any of it.

create or replace function public.ingest_metrics(job_id uuid, job_token text, points jsonb) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  j public.training_jobs%rowtype := lora_internal.job_for_token(ingest_metrics.job_id, ingest_metrics.job_token);
  known constant text[] := array['step', 'epoch', 'train_loss', 'eval_loss', 'perplexity', 'learning_rate',
                                 'grad_norm', 'tokens_per_second', 'gpu_memory_gb', 'extra', 'recorded_at'];
  written integer;
  attempt integer := 0;
begin
  if jsonb_typeof(ingest_metrics.points) is distinct from 'array' then
    raise exception 'points must be a JSON array of objects' using errcode = '22023';
  end if;
  if jsonb_array_length(ingest_metrics.points) > 1000 then
    raise exception 'at most 1000 points per batch, got %', jsonb_array_length(ingest_metrics.points)
      using errcode = '22023', hint = 'Split the batch.';
  end if;
  if exists (select 1 from jsonb_array_elements(ingest_metrics.points) e(p)
              where jsonb_typeof(e.p) <> 'object' or jsonb_typeof(e.p -> 'step') is distinct from 'number') then
    raise exception 'every point must be an object with a numeric step' using errcode = '22023';
  end if;
  loop
    begin
      with incoming as (
        select r.*, e.ord,
               (e.p - known) || case when jsonb_typeof(e.p -> 'extra') = 'object' then e.p -> 'extra'
                                     else '{}'::jsonb end as merged_extra
          from jsonb_array_elements(ingest_metrics.points) with ordinality as e(p, ord)
          cross join lateral jsonb_to_record(e.p) as r(
            step integer, epoch double precision, train_loss double precision, eval_loss double precision,
            perplexity double precision, learning_rate double precision, grad_norm double precision,
            tokens_per_second double precision, gpu_memory_gb double precision, recorded_at timestamptz)
      ),
      extras as (
        select s.step, jsonb_object_agg(s.key, s.value) as extra
          from (select distinct on (i.step, kv.key) i.step, kv.key, kv.value
                  from incoming i cross join lateral jsonb_each(i.merged_extra) kv
                 order by i.step, kv.key, i.ord desc) s
         group by s.step
      ),
      merged as (
        select i.step,
               (array_agg(i.epoch order by i.ord desc) filter (where i.epoch is not null))[1] as epoch,
               (array_agg(i.train_loss order by i.ord desc) filter (where i.train_loss is not null))[1] as train_loss,
               (array_agg(i.eval_loss order by i.ord desc) filter (where i.eval_loss is not null))[1] as eval_loss,
               (array_agg(i.perplexity order by i.ord desc) filter (where i.perplexity is not null))[1] as perplexity,
               (array_agg(i.learning_rate order by i.ord desc) filter (where i.learning_rate is not null))[1]
                 as learning_rate,
               (array_agg(i.grad_norm order by i.ord desc) filter (where i.grad_norm is not null))[1] as grad_norm,
               (array_agg(i.tokens_per_second order by i.ord desc) filter (where i.tokens_per_second is not null))[1]
                 as tokens_per_second,
               (array_agg(i.gpu_memory_gb order by i.ord desc) filter (where i.gpu_memory_gb is not null))[1]
                 as gpu_memory_gb,
               max(i.recorded_at) as recorded_at
          from incoming i
         group by i.step
      )
      merge into public.metrics_points m
      using (select mg.*, coalesce(x.extra, '{}'::jsonb) as extra
               from merged mg left join extras x on x.step = mg.step) src
         on m.job_id = j.id and m.step = src.step
      when matched then update set
        epoch = coalesce(src.epoch, m.epoch),
        train_loss = coalesce(src.train_loss, m.train_loss),
        eval_loss = coalesce(src.eval_loss, m.eval_loss),
        perplexity = coalesce(src.perplexity, m.perplexity),
        learning_rate = coalesce(src.learning_rate, m.learning_rate),
        grad_norm = coalesce(src.grad_norm, m.grad_norm),
        tokens_per_second = coalesce(src.tokens_per_second, m.tokens_per_second),
        gpu_memory_gb = coalesce(src.gpu_memory_gb, m.gpu_memory_gb),
        extra = m.extra || src.extra,
        recorded_at = coalesce(src.recorded_at, now())
      when not matched then insert (job_id, user_id, step, epoch, train_loss, eval_loss, perplexity,
                                    learning_rate, grad_norm, tokens_per_second, gpu_memory_gb, extra,
                                    recorded_at)
        values (j.id, j.user_id, src.step, coalesce(src.epoch, 0), src.train_loss, src.eval_loss, src.perplexity,
                src.learning_rate, src.grad_norm, src.tokens_per_second, src.gpu_memory_gb, src.extra,
                coalesce(src.recorded_at, now()));
      get diagnostics written = row_count;
      return written;
    exception when unique_violation then
      -- A concurrent writer inserted one of these steps first; merging again now updates it.
      attempt := attempt + 1;
      if attempt >= 3 then
        raise;
      end if;
    end;
  end loop;
end
$$;

revoke all on function public.ingest_metrics(uuid, text, jsonb) from public, anon, authenticated;
grant execute on function public.ingest_metrics(uuid, text, jsonb) to anon, authenticated, service_role;
