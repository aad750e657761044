-- 1. continuous aggregate samples_1m over samples
CREATE MATERIALIZED VIEW samples_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT
    time_bucket(INTERVAL '1 minute', time) AS bucket,
    series_id,
    min(value) AS min,
    max(value) AS max,
    vigil_sum_combine(
        sum(value) FILTER (WHERE abs(value) < '1e290'::float8),
        sum(value::numeric) FILTER (WHERE NOT abs(value) < '1e290'::float8)
    ) AS sum,
    count(*) AS count,
    first(value, time) AS first,
    last(value, time) AS last,
    vigil_increase(value ORDER BY time) AS increase,
    max(value) FILTER (WHERE time = time_bucket(INTERVAL '1 minute', time)) AS head
FROM samples
WHERE value <> 'NaN'::float8
GROUP BY time_bucket(INTERVAL '1 minute', time), series_id
WITH NO DATA;

-- 2. continuous aggregate samples_1h over samples_1m
CREATE MATERIALIZED VIEW samples_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT
    time_bucket(INTERVAL '1 hour', bucket) AS bucket,
    series_id,
    min(min) AS min,
    max(max) AS max,
    vigil_sum_combine(
        sum(sum) FILTER (WHERE abs(sum) < '1e290'::float8),
        sum(sum::numeric) FILTER (WHERE NOT abs(sum) < '1e290'::float8)
    ) AS sum,
    sum(count)::bigint AS count,
    first(first, bucket) AS first,
    last(last, bucket) AS last,
    vigil_increase_merge(first, last, increase ORDER BY bucket) AS increase,
    max(head) FILTER (WHERE bucket = time_bucket(INTERVAL '1 hour', bucket)) AS head
FROM samples_1m
GROUP BY time_bucket(INTERVAL '1 hour', bucket), series_id
WITH NO DATA;

-- 3. compress raw chunks per series, in time order
ALTER TABLE samples SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id', timescaledb.compress_orderby = 'time');

-- 4. replace the compression policy
SELECT remove_compression_policy('samples', if_exists => true);

-- 5. compress raw chunks after storage.compress_after
-- $1 = interval '2d'
SELECT add_compression_policy('samples', compress_after => $1::interval);

-- 6. replace the refresh policy of samples_1m
SELECT remove_continuous_aggregate_policy('samples_1m', if_exists => true);

-- 7. refresh samples_1m
-- $1 = interval '8d2m'
-- $2 = interval '1m'
-- $3 = interval '1m'
SELECT add_continuous_aggregate_policy('samples_1m', start_offset => $1::interval, end_offset => $2::interval, schedule_interval => $3::interval);

-- 8. replace the refresh policy of samples_1h
SELECT remove_continuous_aggregate_policy('samples_1h', if_exists => true);

-- 9. refresh samples_1h
-- $1 = interval '8d2h'
-- $2 = interval '1h'
-- $3 = interval '15m'
SELECT add_continuous_aggregate_policy('samples_1h', start_offset => $1::interval, end_offset => $2::interval, schedule_interval => $3::interval);

-- 10. replace the retention policy of samples
SELECT remove_retention_policy('samples', if_exists => true);

-- 11. drop samples chunks older than its retention
-- $1 = interval '15d'
SELECT add_retention_policy('samples', drop_after => $1::interval);

-- 12. replace the retention policy of samples_1m
SELECT remove_retention_policy('samples_1m', if_exists => true);

-- 13. drop samples_1m chunks older than its retention
-- $1 = interval '90d'
SELECT add_retention_policy('samples_1m', drop_after => $1::interval);

-- 14. replace the retention policy of samples_1h
SELECT remove_retention_policy('samples_1h', if_exists => true);

-- 15. drop samples_1h chunks older than its retention
-- $1 = interval '1095d'
SELECT add_retention_policy('samples_1h', drop_after => $1::interval);
