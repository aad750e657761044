"""Rollups (samples_1m, samples_1h) and retention, in both TimescaleDB license modes."""
