"""structlog, configured once per process.

``configure_logging`` is the only place that sets up logging: JSON lines when
stderr is not a terminal (what log shippers read), coloured console output on
a terminal. Standard-library loggers (nats-py, asyncpg, uvicorn) are routed
through the same renderer so a service prints one format.

Log a failure once when it starts and once when it recovers; never log and
raise the same error.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_configured = False

Format = Literal["auto", "json", "console"]


def configure_logging(
    level: str = "info", fmt: Format = "auto", *, service: str | None = None
) -> None:
    """Set up structlog and the stdlib root logger; later calls only change the level."""
    global _configured  # noqa: PLW0603 - one process-wide logging setup is the point
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    if _configured:
        logging.getLogger().setLevel(numeric)
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(numeric))
        return
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared_processors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared_processors,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    if service is not None:
        structlog.contextvars.bind_contextvars(service=service)
    _configured = True


def is_configured() -> bool:
    return _configured


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger whose lines carry ``component=name``; usable before configuration."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
