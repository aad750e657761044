-- 1. replace the compression policy
SELECT remove_compression_policy('samples', if_exists => true);

-- 2. compress raw chunks after storage.compress_after
-- $1 = interval '2d'
SELECT add_compression_policy('samples', compress_after => $1::interval);

-- 3. replace the refresh policy of samples_1m
SELECT remove_continuous_aggregate_policy('samples_1m', if_exists => true);

-- 4. refresh samples_1m
-- $1 = interval '8d2m'
-- $2 = interval '1m'
-- $3 = interval '1m'
SELECT add_continuous_aggregate_policy('samples_1m', start_offset => $1::interval, end_offset => $2::interval, schedule_interval => $3::interval);

-- 5. replace the refresh policy of samples_1h
SELECT remove_continuous_aggregate_policy('samples_1h', if_exists => true);

-- 6. refresh samples_1h
-- $1 = interval '8d2h'
-- $2 = interval '1h'
-- $3 = interval '15m'
SELECT add_continuous_aggregate_policy('samples_1h', start_offset => $1::interval, end_offset => $2::interval, schedule_interval => $3::interval);

-- 7. replace the retention policy of samples
SELECT remove_retention_policy('samples', if_exists => true);

-- 8. drop samples chunks older than its retention
-- $1 = interval '30d'
SELECT add_retention_policy('samples', drop_after => $1::interval);

-- 9. replace the retention policy of samples_1m
SELECT remove_retention_policy('samples_1m', if_exists => true);

-- 10. drop samples_1m chunks older than its retention
-- $1 = interval '180d'
SELECT add_retention_policy('samples_1m', drop_after => $1::interval);

-- 11. replace the retention policy of samples_1h
SELECT remove_retention_policy('samples_1h', if_exists => true);

-- 12. drop samples_1h chunks older than its retention
-- $1 = interval '1825d'
SELECT add_retention_policy('samples_1h', drop_after => $1::interval);
