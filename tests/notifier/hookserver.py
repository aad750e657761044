"""A real local HTTP server standing in for third-party endpoints: records requests, answers
as told, and checks webhook payloads against Alertmanager's version 4 shape."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b"ok"
    gate: asyncio.Event | None = None  # answer only once the test sets it


class HookServer:
    """``answers[path]`` is a list consumed one per request (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answers: dict[str, list[Answer]] = {}
        self.port = 0
        self._server: asyncio.Server | None = None
        self.arrived = asyncio.Event()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> HookServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    def on(self, path: str, *answers: Answer) -> None:
        self.answers[path] = list(answers)

    def received(self, path: str = "/hook") -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(
        self, count: int, path: str = "/hook", within: float = 10.0
    ) -> list[Request]:
        """Bounded polling: the first ``count`` requests to ``path``."""
        async with asyncio.timeout(within):
            while len(self.received(path)) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received(path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Request(method, target, headers, body))
                self.arrived.set()
                queue = self.answers.get(target, [Answer()])
                answer = queue.pop(0) if len(queue) > 1 else queue[0]
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                if answer.gate is not None:
                    await answer.gate.wait()
                extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
                writer.write(
                    f"HTTP/1.1 {answer.status} X\r\nContent-Length: {len(answer.body)}\r\n{extra}\r\n".encode()
                    + answer.body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


ALERT_KEYS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}
PAYLOAD_KEYS = {
    "version",
    "groupKey",
    "truncatedAlerts",
    "status",
    "receiver",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "alerts",
}


def check_webhook_payload(doc: Any) -> None:
    """Assert Alertmanager's webhook payload v4 shape, field by field."""
    assert isinstance(doc, dict)
    assert set(doc) == PAYLOAD_KEYS, set(doc) ^ PAYLOAD_KEYS
    assert doc["version"] == "4"
    assert doc["status"] in ("firing", "resolved")
    assert isinstance(doc["groupKey"], str)
    assert isinstance(doc["truncatedAlerts"], int)
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert isinstance(doc[key], dict)
        assert all(isinstance(v, str) for v in doc[key].values())
    assert isinstance(doc["alerts"], list)
    for a in doc["alerts"]:
        assert set(a) == ALERT_KEYS, set(a) ^ ALERT_KEYS
        assert a["status"] in ("firing", "resolved")
        assert a["startsAt"].endswith("Z")
        assert a["endsAt"].endswith("Z")
        assert len(a["fingerprint"]) == 16
