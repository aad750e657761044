"""Re-read the configuration on SIGHUP or ``POST /-/reload``; keep the old one on failure.

``Reloader.reload()`` loads and validates the file again, hands the new
config to the service's ``apply`` callback, and only then makes it current.
If loading or applying fails, the old configuration stays in force, the
failure is logged once with the reason, and ``vigil_config_last_reload_successful``
drops to 0 until a reload succeeds (the names mirror Prometheus'
``prometheus_config_last_reload_successful``). Reloads are serialized.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from shared.config.loader import LoadedConfig, load_config
from shared.errors import ConfigError
from shared.log import get_logger

log = get_logger(__name__)

Apply = Callable[[LoadedConfig], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    ok: bool
    error: str | None = None


class Reloader:
    """Holds the current configuration and swaps it in only when a reload fully succeeds."""

    def __init__(
        self,
        current: LoadedConfig,
        apply: Apply,
        *,
        env: Mapping[str, str] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._current = current
        self._apply = apply
        self._env = env
        self._lock = asyncio.Lock()
        self._ok = Gauge(
            "vigil_config_last_reload_successful",
            "Whether the last configuration reload succeeded (1) or failed (0).",
            registry=registry,
        )
        self._ok_time = Gauge(
            "vigil_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
            registry=registry,
        )
        self._ok.set(1)
        self._ok_time.set(time.time())
        self._failing = False
        self._tasks: set[asyncio.Task[ReloadOutcome]] = set()

    @property
    def current(self) -> LoadedConfig:
        return self._current

    @property
    def path(self) -> Path | None:
        return self._current.path

    async def reload(self) -> ReloadOutcome:
        """Load, validate and apply the file again; on any failure keep the old config."""
        async with self._lock:
            try:
                new = load_config(self._current.path, self._env)
                await self._apply(new)
            except ConfigError as exc:
                return self._failed(str(exc))
            except Exception as exc:  # noqa: BLE001 - a failed apply must not take the service down
                return self._failed(f"cannot apply new configuration: {exc}")
            self._current = new
            self._ok.set(1)
            self._ok_time.set(time.time())
            if self._failing:
                log.info("configuration reloaded, recovered from failed reload", path=str(new.path))
            else:
                log.info("configuration reloaded", path=str(new.path))
            self._failing = False
            return ReloadOutcome(ok=True)

    def _failed(self, reason: str) -> ReloadOutcome:
        self._ok.set(0)
        self._failing = True
        log.error("cannot reload configuration, keeping the previous one", reason=reason)
        return ReloadOutcome(ok=False, error=reason)

    def install_sighup(self) -> None:
        """Reload on SIGHUP (call from inside the running loop)."""
        loop = asyncio.get_running_loop()

        def on_hup() -> None:
            task = loop.create_task(self.reload())
            self._tasks.add(task)  # keep a reference until done: the loop holds tasks weakly
            task.add_done_callback(self._tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)

    def remove_sighup(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
