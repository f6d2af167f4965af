-- The storage schema subset the Storage API and our policies rely on (research §3.2, §5).
create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to anon, authenticated, service_role;

create table if not exists storage.buckets (
  id text primary key,
  name text not null,
  owner uuid,
  owner_id text,
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  type text not null default 'STANDARD' check (type in ('STANDARD', 'ANALYTICS', 'VECTOR')),
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  constraint bucket_name_length check (char_length(name) between 1 and 100)
);
create unique index if not exists bname on storage.buckets (name);

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  user_metadata jsonb,
  version text,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored
);
create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
-- Since storage migration 0046 the API roles have ALL on both tables and no policy exists by default.
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;

-- All '/'-separated segments but the last: 'a/b/c.txt' -> {a,b}.
create or replace function storage.foldername(name text) returns text[]
language sql immutable as $$
  select (string_to_array(name, '/'))[1:greatest(cardinality(string_to_array(name, '/')) - 1, 0)]
$$;

-- The last segment: 'a/b/c.txt' -> 'c.txt'.
create or replace function storage.filename(name text) returns text
language sql immutable as $$
  select (string_to_array(name, '/'))[cardinality(string_to_array(name, '/'))]
$$;

-- Text after the last '.' of the last segment (the whole segment when it has no dot, as Supabase does).
create or replace function storage.extension(name text) returns text
language sql immutable as $$
  select reverse(split_part(reverse(storage.filename(name)), '.', 1))
$$;

-- Direct children of a prefix, folders as entries with null id. SECURITY INVOKER: RLS decides what shows.
create or replace function storage.search(
  prefix text,
  bucketname text,
  limits int default 100,
  levels int default 1,
  offsets int default 0,
  search text default '',
  sortcolumn text default 'name',
  sortorder text default 'asc'
) returns table (
  name text,
  id uuid,
  updated_at timestamptz,
  created_at timestamptz,
  last_accessed_at timestamptz,
  metadata jsonb
)
language sql stable as $$
  with base as (
    select case when coalesce(prefix, '') = '' or right(prefix, 1) = '/' then coalesce(prefix, '')
                else prefix || '/' end as p
  ),
  children as (
    select split_part(substr(o.name, length(b.p) + 1), '/', 1) as child,
           position('/' in substr(o.name, length(b.p) + 1)) > 0 as is_folder,
           o.id, o.updated_at, o.created_at, o.last_accessed_at, o.metadata
      from storage.objects o, base b
     where o.bucket_id = bucketname
       and left(o.name, length(b.p)) = b.p
       and length(o.name) > length(b.p)
  ),
  entries as (
    select distinct on (c.child, c.is_folder)
           c.child, c.is_folder,
           case when c.is_folder then null else c.id end as id,
           case when c.is_folder then null else c.updated_at end as updated_at,
           case when c.is_folder then null else c.created_at end as created_at,
           case when c.is_folder then null else c.last_accessed_at end as last_accessed_at,
           case when c.is_folder then null else c.metadata end as metadata
      from children c
     where c.child <> ''
       and (coalesce(search, '') = '' or lower(c.child) like lower(replace(replace(replace(search, '\', '\\'), '%', '\%'), '_', '\_')) || '%')
     order by c.child, c.is_folder
  )
  select e.child, e.id, e.updated_at, e.created_at, e.last_accessed_at, e.metadata
    from entries e
   order by
     case when sortcolumn <> 'name' then (case when e.is_folder then 0 else 1 end) end,
     case when sortcolumn = 'name' and lower(sortorder) = 'asc' then lower(e.child) collate "C" end asc,
     case when sortcolumn = 'name' and lower(sortorder) <> 'asc' then lower(e.child) collate "C" end desc,
     case when sortcolumn = 'updated_at' and lower(sortorder) = 'asc' then e.updated_at end asc,
     case when sortcolumn = 'updated_at' and lower(sortorder) <> 'asc' then e.updated_at end desc,
     case when sortcolumn = 'created_at' and lower(sortorder) = 'asc' then e.created_at end asc,
     case when sortcolumn = 'created_at' and lower(sortorder) <> 'asc' then e.created_at end desc,
     case when sortcolumn = 'last_accessed_at' and lower(sortorder) = 'asc' then e.last_accessed_at end asc,
     case when sortcolumn = 'last_accessed_at' and lower(sortorder) <> 'asc' then e.last_accessed_at end desc,
     lower(e.child) collate "C"
   limit least(greatest(coalesce(limits, 100), 0), 1500)
  offset greatest(coalesce(offsets, 0), 0)
$$;

-- Deletes must go through the Storage API (which sets storage.allow_delete_query per transaction).
create or replace function storage.protect_delete() returns trigger
language plpgsql as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), 'false') <> 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using errcode = '42501',
            hint = 'This prevents accidental data loss from orphaned objects.';
  end if;
  return null;
end
$$;

create or replace function storage.update_updated_at_column() returns trigger
language plpgsql as $$
begin
  new.updated_at = now();
  return new;
end
$$;

drop trigger if exists protect_objects_delete on storage.objects;
create trigger protect_objects_delete before delete on storage.objects
  for each statement execute function storage.protect_delete();
drop trigger if exists protect_buckets_delete on storage.buckets;
create trigger protect_buckets_delete before delete on storage.buckets
  for each statement execute function storage.protect_delete();
drop trigger if exists update_objects_updated_at on storage.objects;
create trigger update_objects_updated_at before update on storage.objects
  for each row execute function storage.update_updated_at_column();

alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;
alter function storage.search(text, text, int, int, int, text, text, text) owner to supabase_storage_admin;
grant execute on all functions in schema storage to anon, authenticated, service_role;
