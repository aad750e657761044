"""Configuration: pydantic models of every section, the loader and the reload helper."""

from shared.config.loader import LoadedConfig, load_config
from shared.config.models import (
    AlertingConfig,
    CollectorConfig,
    LogConfig,
    NatsConfig,
    StorageConfig,
    StreamConfig,
    VigilConfig,
    VisualizationConfig,
)

__all__ = [
    "AlertingConfig",
    "CollectorConfig",
    "LoadedConfig",
    "LogConfig",
    "NatsConfig",
    "StorageConfig",
    "StreamConfig",
    "VigilConfig",
    "VisualizationConfig",
    "load_config",
]
