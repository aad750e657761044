"""Collectors: one module per kind, each behind ``agent.collectors.base.Collector``."""
