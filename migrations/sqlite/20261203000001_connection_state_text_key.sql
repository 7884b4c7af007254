-- Connection ids of any type: SQLite already keeps the saved connection states' ids as
-- text (the PostgreSQL migration of the same name changes its uuid column to text).
select 1;
