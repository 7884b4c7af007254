-- The scanner's terminal-run totals as of a point in time (`settled_upto`), written by the
-- leader after each baseline. A replica that starts or gains the lease loads them and
-- aggregates only the runs completed after that point, instead of the whole history.
-- One row; `totals` is syncwatch's own JSON (kept as text, never queried).
create table syncwatch_scanner_checkpoint (
    name          text primary key,
    settled_upto  text not null,
    totals        text not null,
    updated_at    text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
