-- lora-pipeline core schema: every table of DESIGN §4 with its keys, checks and indexes.
-- Applies to a real Supabase project as is (auth.users exists there) and to the embedded stack.

create schema if not exists lora_internal;
revoke all on schema lora_internal from public;
grant usage on schema lora_internal to anon, authenticated, service_role;

create or replace function lora_internal.set_updated_at() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end
$$;

create table if not exists public.datasets (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 200),
  description text check (char_length(description) <= 2000),
  format text check (format in ('chat', 'sharegpt', 'alpaca', 'prompt_completion', 'text')),
  storage_bucket text not null default 'lora-datasets',
  storage_path text,
  file_name text,
  size_bytes bigint check (size_bytes >= 0),
  sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
  num_examples integer check (num_examples >= 0),
  token_stats jsonb,
  status text not null default 'uploading' check (status in ('uploading', 'ready', 'invalid', 'failed')),
  validation_report jsonb,
  upload_url text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists datasets_user_id_created_at_idx on public.datasets (user_id, created_at desc);
create unique index if not exists datasets_storage_path_key on public.datasets (storage_bucket, storage_path);

create table if not exists public.dataset_download_tokens (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  dataset_id uuid not null references public.datasets (id) on delete cascade,
  token_hash text not null check (token_hash ~ '^[0-9a-f]{64}$'),
  expires_at timestamptz not null,
  used_at timestamptz,
  revoked_at timestamptz,
  grant_hash text check (grant_hash ~ '^[0-9a-f]{64}$'),
  grant_expires_at timestamptz,
  created_at timestamptz not null default now(),
  constraint dataset_download_tokens_token_hash_key unique (token_hash)
);
create index if not exists dataset_download_tokens_dataset_id_idx on public.dataset_download_tokens (dataset_id);
create index if not exists dataset_download_tokens_user_id_idx on public.dataset_download_tokens (user_id);
create unique index if not exists dataset_download_tokens_grant_hash_key
  on public.dataset_download_tokens (grant_hash) where grant_hash is not null;
create index if not exists dataset_download_tokens_expires_at_idx on public.dataset_download_tokens (expires_at);

create table if not exists public.training_jobs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  dataset_id uuid not null references public.datasets (id) on delete restrict,
  name text check (char_length(name) <= 200),
  base_model text not null check (char_length(base_model) between 1 and 500),
  preset text not null default 'balanced',
  hyperparameters jsonb not null default '{}'::jsonb,
  gpu_type text,
  backend text check (backend in ('local', 'runpod')),
  pod_id text,
  status text not null default 'created' check (status in (
    'created', 'validating', 'queued', 'provisioning', 'running', 'uploading',
    'succeeded', 'failed', 'cancelling', 'cancelled')),
  status_reason text,
  attempt integer not null default 1 check (attempt >= 1),
  cost_per_hour numeric(12, 4) check (cost_per_hour >= 0),
  max_runtime_seconds integer not null default 21600 check (max_runtime_seconds > 0),
  max_cost_usd numeric(12, 4) check (max_cost_usd > 0),
  gates jsonb,
  job_token_hash text check (job_token_hash ~ '^[0-9a-f]{64}$'),
  job_token_expires_at timestamptz,
  progress jsonb not null default '{}'::jsonb,
  heartbeat_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  error jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint training_jobs_failed_has_reason check (
    status <> 'failed' or status_reason is not null and status_reason in (
      'validation_failed', 'no_capacity', 'provision_timeout', 'container_error', 'training_error', 'oom',
      'max_runtime_exceeded', 'pod_lost', 'insufficient_funds', 'upload_failed', 'gate_failed',
      'budget_exceeded', 'deploy_error'))
);
create index if not exists training_jobs_user_id_created_at_idx on public.training_jobs (user_id, created_at desc);
create index if not exists training_jobs_dataset_id_idx on public.training_jobs (dataset_id);
create index if not exists training_jobs_active_idx on public.training_jobs (status)
  where status in ('queued', 'provisioning', 'running', 'uploading', 'cancelling');

create table if not exists public.job_events (
  id bigint generated always as identity primary key,
  job_id uuid not null references public.training_jobs (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  level text not null default 'info' check (level in ('debug', 'info', 'warning', 'error')),
  kind text not null check (char_length(kind) between 1 and 100),
  message text not null check (char_length(message) <= 20000),
  data jsonb,
  created_at timestamptz not null default now()
);
create index if not exists job_events_job_id_id_idx on public.job_events (job_id, id);

create table if not exists public.metrics_points (
  job_id uuid not null references public.training_jobs (id) on delete cascade,
  user_id uuid not null,
  step integer not null check (step >= 0),
  epoch double precision not null default 0,
  train_loss double precision,
  eval_loss double precision,
  perplexity double precision,
  learning_rate double precision,
  grad_norm double precision,
  tokens_per_second double precision,
  gpu_memory_gb double precision,
  extra jsonb not null default '{}'::jsonb,
  recorded_at timestamptz not null default now(),
  constraint metrics_points_job_id_step_key unique (job_id, step)
);
create index if not exists metrics_points_job_id_step_desc_idx on public.metrics_points (job_id, step desc);
create index if not exists metrics_points_user_id_idx on public.metrics_points (user_id);

create table if not exists public.model_artifacts (
  id uuid primary key default gen_random_uuid(),
  job_id uuid not null references public.training_jobs (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  storage_bucket text not null default 'lora-models',
  storage_path text not null,
  files jsonb not null default '[]'::jsonb,
  size_bytes bigint not null default 0 check (size_bytes >= 0),
  sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
  adapter_config jsonb,
  created_at timestamptz not null default now(),
  constraint model_artifacts_job_id_storage_path_key unique (job_id, storage_path)
);
create index if not exists model_artifacts_user_id_idx on public.model_artifacts (user_id);

create table if not exists public.cost_records (
  id uuid primary key default gen_random_uuid(),
  job_id uuid not null references public.training_jobs (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  attempt integer not null default 1 check (attempt >= 1),
  gpu_type text,
  hourly_rate numeric(12, 4) not null check (hourly_rate >= 0),
  seconds numeric(14, 3) not null check (seconds >= 0),
  amount_usd numeric(14, 6) not null check (amount_usd >= 0),
  started_at timestamptz,
  ended_at timestamptz,
  recorded_at timestamptz not null default now(),
  constraint cost_records_job_id_attempt_key unique (job_id, attempt)
);
create index if not exists cost_records_user_id_recorded_at_idx on public.cost_records (user_id, recorded_at);

create table if not exists public.notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  job_id uuid references public.training_jobs (id) on delete cascade,
  kind text not null check (char_length(kind) between 1 and 100),
  severity text not null default 'info' check (severity in ('info', 'warning', 'critical')),
  title text not null check (char_length(title) <= 500),
  body text check (char_length(body) <= 20000),
  data jsonb,
  read_at timestamptz,
  created_at timestamptz not null default now()
);
create index if not exists notifications_user_id_created_at_idx on public.notifications (user_id, created_at desc);
create index if not exists notifications_job_id_idx on public.notifications (job_id);

create table if not exists public.model_baselines (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  model_name text not null check (char_length(model_name) between 1 and 200),
  version text,
  metric text not null check (char_length(metric) between 1 and 200),
  kind text not null check (kind in ('min', 'max', 'delta', 'ratio')),
  direction text check (direction in ('higher_is_better', 'lower_is_better')),
  threshold double precision,
  baseline_value double precision,
  source text not null default 'pinned' check (source in ('pinned', 'champion', 'job')),
  baseline_job_id uuid references public.training_jobs (id) on delete set null,
  aggregation text not null default 'last' check (aggregation in ('last', 'min', 'max')),
  severity text not null default 'critical' check (severity in ('critical', 'warning', 'info')),
  on_missing text not null default 'fail' check (on_missing in ('fail', 'warn', 'skip')),
  eval_dataset_sha256 text check (eval_dataset_sha256 ~ '^[0-9a-f]{64}$'),
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint model_baselines_bound_needs_threshold check (kind not in ('min', 'max') or threshold is not null),
  constraint model_baselines_relative_needs_direction check (kind not in ('delta', 'ratio') or direction is not null),
  constraint model_baselines_tolerance_not_negative check (
    kind not in ('delta', 'ratio') or threshold is null or threshold >= 0),
  constraint model_baselines_job_source check ((source = 'job') = (baseline_job_id is not null))
);
create index if not exists model_baselines_user_model_idx on public.model_baselines (user_id, model_name) where active;

create table if not exists public.validation_results (
  id uuid primary key default gen_random_uuid(),
  job_id uuid not null references public.training_jobs (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  model_name text not null,
  version text,
  decision text not null check (decision in ('pass', 'warn', 'block')),
  strict boolean not null default false,
  conditions jsonb not null default '[]'::jsonb,
  summary jsonb,
  eval_dataset_sha256 text,
  created_at timestamptz not null default now()
);
create index if not exists validation_results_model_idx on public.validation_results (user_id, model_name, created_at desc);
create index if not exists validation_results_job_id_idx on public.validation_results (job_id);

do $$
declare t text;
begin
  foreach t in array array['datasets', 'training_jobs', 'model_baselines'] loop
    execute format('drop trigger if exists set_updated_at on public.%I', t);
    execute format(
      'create trigger set_updated_at before update on public.%I for each row execute function lora_internal.set_updated_at()', t);
  end loop;
end
$$;
