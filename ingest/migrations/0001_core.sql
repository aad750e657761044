-- Vigil core schema: series, samples, metadata, rejects, agents and history.
-- Common to both TimescaleDB license modes; mode-specific objects (continuous
-- aggregates, policies) are made by Python in ingest/rollup.

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- One row per distinct (metric, labels). labels include the authoritative
-- `host` label taken from the NATS subject. hash is a 128-bit BLAKE2b of the
-- metric name and sorted labels (ingest/seriesid.py).
CREATE TABLE series (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    metric      text        NOT NULL,
    labels      jsonb       NOT NULL,
    hash        bytea       NOT NULL UNIQUE,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX series_labels_gin ON series USING gin (labels jsonb_path_ops);
CREATE INDEX series_metric ON series (metric);

-- Type, help and unit per metric name (Prometheus /api/v1/metadata).
CREATE TABLE metadata (
    metric      text PRIMARY KEY,
    type        text,
    help        text,
    unit        text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Raw samples. Any float64 is stored bit for bit (NaN payloads, ±Inf, the
-- staleness marker 0x7ff0000000000002): read values in binary (asyncpg does)
-- or through float8send(); text output prints every NaN as 'NaN'.
-- The unique index is the only index: it serves lookups by series and time
-- range, and makes a redelivered batch a no-op.
CREATE TABLE samples (
    time        timestamptz      NOT NULL,
    series_id   bigint           NOT NULL,
    value       double precision NOT NULL,
    UNIQUE (series_id, time)
);
SELECT create_hypertable('samples', 'time', create_default_indexes => false);

-- Poison messages: terminated, never retried. stream_seq keys the record so a
-- redelivered poison message is recorded once.
CREATE TABLE rejects (
    time          timestamptz NOT NULL DEFAULT now(),
    stream        text        NOT NULL,
    stream_seq    bigint      NOT NULL,
    subject       text        NOT NULL,
    host          text,
    reason        text        NOT NULL,
    detail        text        NOT NULL,
    size          integer     NOT NULL,
    payload_head  bytea       NOT NULL,
    PRIMARY KEY (stream, stream_seq)
);
CREATE INDEX rejects_time ON rejects (time);

-- Agents by host: first/last batch seen (last_seen written at most every 30 s).
CREATE TABLE agents (
    host        text PRIMARY KEY,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    agent_id    text        NOT NULL
);

-- History. Each row is one JetStream message, keyed by its stream sequence so
-- a redelivery is a no-op.
CREATE TABLE alert_events (
    stream_seq     bigint      NOT NULL,
    fingerprint    text        NOT NULL,
    status         text        NOT NULL,
    labels         jsonb       NOT NULL,
    annotations    jsonb       NOT NULL,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    generator_url  text        NOT NULL,
    subject        text        NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (fingerprint, status, starts_at, stream_seq)
);
CREATE INDEX alert_events_starts_at ON alert_events (starts_at);
CREATE INDEX alert_events_labels_gin ON alert_events USING gin (labels jsonb_path_ops);

-- What the notifier did with each alert (a plain subject: at most once).
CREATE TABLE alert_status (
    fingerprint   text        NOT NULL,
    state         text        NOT NULL,
    silenced_by   text[]      NOT NULL,
    inhibited_by  text[]      NOT NULL,
    notified_at   timestamptz,
    receivers     text[]      NOT NULL,
    at            timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_status_fingerprint_at ON alert_status (fingerprint, at);

CREATE TABLE notification_results (
    stream_seq         bigint      PRIMARY KEY,
    receiver           text        NOT NULL,
    integration        text        NOT NULL,
    integration_index  integer     NOT NULL,
    group_key          text        NOT NULL,
    firing             integer     NOT NULL,
    resolved           integer     NOT NULL,
    fingerprints       text[]      NOT NULL,
    outcome            text        NOT NULL,
    attempt            integer     NOT NULL,
    error              text,
    duration_seconds   double precision NOT NULL,
    at                 timestamptz NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_results_at ON notification_results (at);

CREATE TABLE silence_events (
    stream_seq  bigint      PRIMARY KEY,
    id          text        NOT NULL,
    kind        text        NOT NULL,
    matchers    jsonb       NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_by  text        NOT NULL,
    comment     text        NOT NULL,
    updated_at  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX silence_events_id ON silence_events (id, updated_at);
