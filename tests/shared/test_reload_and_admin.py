"""Reload through POST /-/reload and SIGHUP; a failed reload keeps the old configuration."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from shared.admin import AdminServer
from shared.config import LoadedConfig, load_config
from shared.config.reload import Reloader


async def http(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), payload


def config_file(tmp_path: Path, level: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(f"log: {{level: {level}}}\n", encoding="utf-8")
    return path


async def start(tmp_path: Path) -> tuple[Reloader, AdminServer, list[str], CollectorRegistry]:
    applied: list[str] = []

    async def apply(new: LoadedConfig) -> None:
        applied.append(new.config.log.level)

    registry = CollectorRegistry()
    reloader = Reloader(
        load_config(config_file(tmp_path, "info"), {}), apply, env={}, registry=registry
    )
    admin = AdminServer(registry=registry, reloader=reloader)
    await admin.start()
    return reloader, admin, applied, registry


async def test_post_reload_applies_a_valid_change(tmp_path: Path) -> None:
    reloader, admin, applied, _ = await start(tmp_path)
    try:
        config_file(tmp_path, "debug")
        status, body = await http(admin.port, "POST", "/-/reload")
        assert (status, applied) == (200, ["debug"]), body
        assert reloader.current.config.log.level == "debug"
    finally:
        await admin.stop()


async def test_failed_reload_keeps_old_config_and_says_why(tmp_path: Path) -> None:
    reloader, admin, applied, registry = await start(tmp_path)
    try:
        (tmp_path / "vigil.yaml").write_text("log: {level: loud}\n", encoding="utf-8")
        status, body = await http(admin.port, "POST", "/-/reload")
        assert status == 500
        assert b"log.level" in body
        assert applied == []
        assert reloader.current.config.log.level == "info"
        assert registry.get_sample_value("vigil_config_last_reload_successful") == 0
        config_file(tmp_path, "warning")
        assert (await http(admin.port, "POST", "/-/reload"))[0] == 200
        assert registry.get_sample_value("vigil_config_last_reload_successful") == 1
    finally:
        await admin.stop()


async def test_apply_failure_keeps_old_config(tmp_path: Path) -> None:
    async def apply(_new: LoadedConfig) -> None:
        raise RuntimeError("port in use")

    reloader = Reloader(
        load_config(config_file(tmp_path, "info"), {}), apply, env={}, registry=CollectorRegistry()
    )
    config_file(tmp_path, "debug")
    outcome = await reloader.reload()
    assert not outcome.ok
    assert outcome.error is not None
    assert "port in use" in outcome.error
    assert reloader.current.config.log.level == "info"


async def test_sighup_reloads(tmp_path: Path) -> None:
    reloader, admin, applied, _ = await start(tmp_path)
    reloader.install_sighup()
    try:
        config_file(tmp_path, "error")
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if applied:
                break
            await asyncio.sleep(0.01)
        assert applied == ["error"]
    finally:
        reloader.remove_sighup()
        await admin.stop()


async def test_admin_serves_metrics_health_and_errors(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    Counter("vigil_test_things", "Things.", registry=registry).inc(3)
    ready = {"now": False}
    admin = AdminServer(registry=registry, ready=lambda: ready["now"])
    await admin.start()
    try:
        status, body = await http(admin.port, "GET", "/metrics")
        assert status == 200
        assert b"vigil_test_things_total 3.0" in body
        assert (await http(admin.port, "GET", "/healthz"))[0] == 200
        assert (await http(admin.port, "GET", "/readyz"))[0] == 503
        ready["now"] = True
        assert (await http(admin.port, "GET", "/readyz"))[0] == 200
        assert (await http(admin.port, "GET", "/nope"))[0] == 404
        assert (await http(admin.port, "POST", "/metrics"))[0] == 405
        assert (await http(admin.port, "POST", "/-/reload"))[0] == 404
        # garbage does not stop the server
        reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
        writer.write(b"\x00\xff garbage\r\n\r\n")
        await writer.drain()
        assert (await reader.read()).startswith(b"HTTP/1.1 400")
        writer.close()
        assert (await http(admin.port, "GET", "/healthz"))[0] == 200
    finally:
        await admin.stop()
