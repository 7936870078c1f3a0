-- PostgreSQL settings for a database that FerretDB 1.x uses as its backend.
--
-- FerretDB 1.x pushes a top-level equality filter down to PostgreSQL as
--   _jsonb -> 'field' @> '"value"'
-- but builds every MongoDB index as a B-tree on (_jsonb -> 'field'), which PostgreSQL cannot use
-- for `@>`. So every find, update and delete by `_id` or by any indexed field is a sequential
-- scan of the whole collection (30 ms at 100,000 documents, and growing with the collection).
--
-- This file, applied once to the database before FerretDB starts (idempotent), makes those
-- pushed-down filters use an index:
--   1. an event trigger mirrors the leading key of every B-tree index FerretDB creates (and the
--      log's `status` and `type` wherever they appear) with a GIN jsonb_path_ops index on the
--      same expression, which serves `@>`;
--      Built with fastupdate = off: a GIN pending list is only merged by (auto)vacuum or when
--      it is full, and every lookup scans it meanwhile (point reads were measured 30% slower
--      with a grown list);
--   2. plan_cache_mode = force_custom_plan, because FerretDB passes the field name as a query
--      parameter (`_jsonb -> $1`) and only a plan made with the value at hand matches the index.
-- The application is unchanged: it declares its indexes through the MongoDB driver, as it would
-- on MongoDB, and the mirror follows them.

CREATE OR REPLACE FUNCTION mailroom_mirror_ferretdb_index() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  cmd record;
  def text;
  tbl regclass;
  m text[];
  k text;
  keys text[];
BEGIN
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE INDEX' LOOP
    def := pg_get_indexdef(cmd.objid);
    -- Our own GIN indexes fire this trigger too: leave them be.
    CONTINUE WHEN def NOT LIKE '% USING btree %' OR def NOT LIKE '%_jsonb -> %';
    SELECT indrelid::regclass INTO tbl FROM pg_index WHERE indexrelid = cmd.objid;
    -- The leading key, as a B-tree would be used, and only a top-level one
    -- ((_jsonb -> 'k'::text)): nested filters are not pushed down.
    m := regexp_match(def, 'USING btree \(\(\(_jsonb -> ''((?:[^'']|'''')+)''::text\)\)');
    CONTINUE WHEN m IS NULL;
    keys := ARRAY[m[1]];
    -- Of the other keys, only the log's filters of few distinct values (status, type). PostgreSQL
    -- intersects their posting lists with the workspace's when its statistics say the filter is
    -- selective (status=bounced on a million entries: a third of the work), and otherwise checks
    -- them on the rows the leading key found, as before. Every other key (sentAt, _id, a
    -- workspace after a recipient) would only add an index write to every entry write.
    FOR k IN SELECT x[1] FROM regexp_matches(def, '\(\(_jsonb -> ''((?:[^'']|'''')+)''::text\)\)', 'g') AS x LOOP
      IF k IN ('status', 'type') AND NOT k = ANY (keys) THEN
        keys := keys || k;
      END IF;
    END LOOP;
    FOREACH k IN ARRAY keys LOOP
      EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %L) jsonb_path_ops) WITH (fastupdate = off)',
        left(md5(tbl::text || '/' || k), 20) || '_gin',
        tbl,
        replace(k, '''''', '''')
      );
    END LOOP;
  END LOOP;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS mailroom_mirror_ferretdb_index;
CREATE EVENT TRIGGER mailroom_mirror_ferretdb_index ON ddl_command_end
  WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION mailroom_mirror_ferretdb_index();

-- 3. lz4 instead of pglz for TOASTed values: entry documents with a timeline pass the 2 kB
--    TOAST threshold, and pglz_compress was the largest single item in PostgreSQL's CPU profile
--    while delivery events were applied (tables created after this setting use it).
DO $do$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', current_database());
  EXECUTE format('ALTER DATABASE %I SET default_toast_compression = lz4', current_database());
END
$do$;
