"""A rule reload replays the metrics stream for the windows it adds, without a database.

Real nats-server. The stream holds 25 minutes of ``hum`` that no rule selected
before the reload; a rule over 30 minutes of it must be evaluated soon after
the reload (from a replay of the stream), not 30 minutes later.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from nats.aio.client import Client

from shared.bus.provision import provision
from shared.config.models import NatsConfig
from tests.alerter.livehelp import Events, Publisher, make_app, now_ms, until, write_config

MIN = 60_000

SHORT = """
groups:
  - name: short
    rules:
      - alert: TempVeryHigh
        expr: avg_over_time(temp{host="web1"}[5m]) > 100
"""

LONG = """
groups:
  - name: long
    rules:
      - alert: HumSpike
        expr: max_over_time(hum{host="web1"}[30m]) > 5
      - alert: HumMissing
        expr: absent_over_time(hum{host="web1"}[30m])
"""


async def test_reload_warms_a_new_window_from_the_stream_alone(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    await provision(nats_client.jetstream(), NatsConfig())
    pub = Publisher(nats_client)
    base = now_ms() // MIN * MIN
    for k in range(25, -1, -1):
        await pub.gauge("temp", base - k * MIN, 1.0)
        await pub.gauge("hum", base - k * MIN, 10.0 if k == 22 else 1.0)
    path = write_config(tmp_path, nats_url, SHORT)
    doc = yaml.safe_load(path.read_text())
    doc["alerter"]["history_from_database"] = False
    path.write_text(yaml.safe_dump(doc))
    app = make_app(path)
    assert app.history is None
    events = Events()
    await events.start(nats_client)
    await app.start()
    try:
        await until(lambda: app.groups[0].last_eval_ms > 0, "the short rule evaluated")
        (tmp_path / "rules.yml").write_text(LONG)
        reloaded_at = now_ms()
        outcome = await app.reloader.reload()
        assert outcome.ok, outcome.error
        await until(lambda: len(events.events) >= 1, "firing from the replayed 30m window")
        assert app.groups[0].not_before_ms == 0
        assert app.groups[0].last_eval_ms >= reloaded_at - 1000
    finally:
        await app.stop()
        await events.stop()
    assert [e.labels["alertname"] for e in events.events] == ["HumSpike"]
