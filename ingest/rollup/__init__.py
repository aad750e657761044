"""Rollups (samples_1m, samples_1h) and retention, in both TimescaleDB license modes.

For ingest's App, at start-up, after :func:`ingest.migrate.migrate`::

    mode = await prepare_rollups(url, config.storage)      # ingest.rollup.schema
    jobs = RollupJobs(url, config.storage)                 # ingest.rollup.jobs
    task = asyncio.create_task(jobs.run_forever(30.0))     # a no-op in timescale mode
    # stop: task.cancel(); await jobs.close()

and in the writer's transaction, ``ingest.rollup.dirty.mark_touched``.

Modules: ``aggregates`` (what a rollup row holds, the SELECTs both modes
share), ``mode`` (license detection), ``schema`` (mode-specific objects),
``timescale_sql`` (continuous aggregates and policies, planned from the
config), ``dirty`` (touched buckets), ``plan`` (pure refresh and retention
planning), ``refresh`` and ``retention`` (apache-mode work), ``jobs`` (the
apache-mode runner), ``statement`` (SQL with parameters, rendered for
snapshots), ``errors``.
"""
