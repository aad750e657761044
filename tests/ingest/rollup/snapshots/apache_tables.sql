-- 1. rollup table samples_1m
CREATE TABLE IF NOT EXISTS samples_1m (
    bucket     timestamptz      NOT NULL,
    series_id  bigint           NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    sum        double precision NOT NULL,
    count      bigint           NOT NULL,
    first      double precision NOT NULL,
    last       double precision NOT NULL,
    increase   double precision NOT NULL,
    head       double precision,
    UNIQUE (series_id, bucket)
);

-- 2. samples_1m in time chunks, for drop_chunks retention
-- $1 = interval '10d'
SELECT create_hypertable('samples_1m', by_range('bucket', $1::interval), create_default_indexes => false, if_not_exists => true);

-- 3. rollup table samples_1h
CREATE TABLE IF NOT EXISTS samples_1h (
    bucket     timestamptz      NOT NULL,
    series_id  bigint           NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    sum        double precision NOT NULL,
    count      bigint           NOT NULL,
    first      double precision NOT NULL,
    last       double precision NOT NULL,
    increase   double precision NOT NULL,
    head       double precision,
    UNIQUE (series_id, bucket)
);

-- 4. samples_1h in time chunks, for drop_chunks retention
-- $1 = interval '100d'
SELECT create_hypertable('samples_1h', by_range('bucket', $1::interval), create_default_indexes => false, if_not_exists => true);
