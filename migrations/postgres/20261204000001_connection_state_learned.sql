-- Saved connection states keep what the scanner learned about each connection: the
-- creation times of its latest scheduled runs and the durations of its latest successes
-- (a versioned text form, see `Learned::to_saved`). A restart from a checkpoint then
-- needs no read of each connection's history, and retention deleting old runs no longer
-- erases a schedule. Null for states saved before, which are learned again from the
-- table after a start, as before.
alter table syncwatch_connection_state add column learned text;
