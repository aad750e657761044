-- Rollups: the aggregate functions both license modes use, and the dirty-bucket
-- logs of apache mode. The rollup tables or continuous aggregates themselves
-- differ by mode and are made by Python (ingest/rollup/schema.py).
--
-- Semantics (ingest/rollup/aggregates.py documents them in full):
-- * NaN values, the staleness marker 0x7ff0000000000002 included, are left out
--   of every aggregate (the rollup queries filter them with value <> 'NaN';
--   PostgreSQL compares every NaN payload equal to 'NaN').
-- * ±Inf are ordinary values with IEEE arithmetic: max may be +Inf, a sum of
--   +Inf and -Inf is NaN, as in Prometheus' *_over_time functions.
-- * increase is counter-reset adjusted over the samples of one bucket, from
--   its first to its last sample: each step is cur - prev, or cur when the
--   value dropped (a reset). The step into a bucket from the one before is not
--   part of it; vigil_increase_merge adds it when buckets are combined.
-- Every function is IMMUTABLE: continuous aggregates accept nothing else.

-- a + b with IEEE overflow to ±Inf. PostgreSQL's float8 + raises "value out of
-- range" instead, which would make one absurd sample poison its bucket forever.
CREATE FUNCTION vigil_float8_add(a double precision, b double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN a = 'NaN'::float8 OR b = 'NaN'::float8 THEN 'NaN'::float8
        WHEN a > 0 AND b > 0 AND a > '1.7976931348623157e308'::float8 - b THEN 'Infinity'::float8
        WHEN a < 0 AND b < 0 AND a < '-1.7976931348623157e308'::float8 - b THEN '-Infinity'::float8
        ELSE a + b
    END
$$;

-- What a counter gained from prev to cur: cur - prev, or cur after a reset
-- (cur < prev: the counter restarted from zero), as Prometheus' increase().
-- The query side adds the step between two rollup rows with it.
CREATE FUNCTION vigil_counter_step(prev double precision, cur double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN cur >= prev THEN vigil_float8_add(cur, -prev) ELSE cur END
$$;

-- State of both increase aggregates: {first, last, increase}.
CREATE FUNCTION vigil_increase_sfunc(state double precision[], v double precision)
RETURNS double precision[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN v IS NULL OR v = 'NaN'::float8 THEN state
        WHEN state IS NULL THEN ARRAY[v, v, 0]
        ELSE ARRAY[state[1], v, vigil_float8_add(state[3], vigil_counter_step(state[2], v))]
    END
$$;

CREATE FUNCTION vigil_increase_merge_sfunc(
    state double precision[], first double precision, last double precision,
    increase double precision
) RETURNS double precision[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN first IS NULL OR last IS NULL OR increase IS NULL THEN state
        WHEN state IS NULL THEN ARRAY[first, last, increase]
        ELSE ARRAY[
            state[1], last,
            vigil_float8_add(vigil_float8_add(state[3], vigil_counter_step(state[2], first)), increase)
        ]
    END
$$;

CREATE FUNCTION vigil_increase_final(state double precision[])
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT state[3]
$$;

-- vigil_increase(value ORDER BY time): the increase of a bucket from raw samples.
CREATE AGGREGATE vigil_increase(double precision) (
    SFUNC = vigil_increase_sfunc,
    STYPE = double precision[],
    FINALFUNC = vigil_increase_final
);

-- vigil_increase_merge(first, last, increase ORDER BY bucket): the increase
-- over consecutive rollup rows, the steps across their boundaries included;
-- equal to vigil_increase over the raw samples they cover.
CREATE AGGREGATE vigil_increase_merge(double precision, double precision, double precision) (
    SFUNC = vigil_increase_merge_sfunc,
    STYPE = double precision[],
    FINALFUNC = vigil_increase_final
);

-- Sum without overflow errors: `small` is the float8 sum of the values below
-- 1e290 in magnitude (no realistic count of them overflows), `huge` the
-- numeric sum of the others (±Inf included; NULL when there were none),
-- rounded to float8 with overflow to ±Inf (the bound is the 17-digit literal
-- just below DBL_MAX: a sum between the two becomes +Inf, never an error).
CREATE FUNCTION vigil_sum_combine(small double precision, huge numeric)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN huge IS NULL THEN small
        WHEN huge = 'NaN'::numeric THEN 'NaN'::float8
        WHEN coalesce(small, 0)::numeric + huge > 1.7976931348623157e308
            THEN 'Infinity'::float8
        WHEN coalesce(small, 0)::numeric + huge < -1.7976931348623157e308
            THEN '-Infinity'::float8
        ELSE (coalesce(small, 0)::numeric + huge)::float8
    END
$$;

-- apache mode: one-minute buckets an ingest commit touched (written by
-- ingest.rollup.dirty.mark_touched in the commit's own transaction). Append
-- only: replicas never update one row, so they never wait on each other. The
-- rollup job reads and deletes rows by id.
CREATE TABLE rollup_dirty (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket  timestamptz NOT NULL
);
CREATE INDEX rollup_dirty_bucket ON rollup_dirty (bucket);

-- apache mode: one-hour buckets whose minutes the job re-rolled, to roll up
-- once the hour is over. Written and read by the rollup job only.
CREATE TABLE rollup_dirty_hours (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket  timestamptz NOT NULL
);
CREATE INDEX rollup_dirty_hours_bucket ON rollup_dirty_hours (bucket);
