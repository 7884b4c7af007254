-- Connection ids of any type: an observed table's connection column may be an integer or
-- a text key, so the saved connection states keep each id as its canonical text (a uuid
-- hyphenated in lower case, whose text order is the uuid's own order).
alter table syncwatch_connection_state
    alter column workspace_connector_id type text using workspace_connector_id::text;
