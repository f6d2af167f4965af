-- Like Supabase's pgrst_ddl_watch: tell the gateway (LISTEN pgrst) to reload its schema cache after DDL.
create or replace function extensions.notify_schema_reload() returns event_trigger
language plpgsql as $$
begin
  notify pgrst, 'reload schema';
end
$$;

drop event trigger if exists lora_schema_reload_on_ddl;
create event trigger lora_schema_reload_on_ddl on ddl_command_end
  execute function extensions.notify_schema_reload();
