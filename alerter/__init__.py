"""The alerter: Prometheus rules evaluated on the live metric stream.

Modules, pure ones first:

- ``alerter.rules``: rule files (Prometheus rule groups, and the design's ``AlertRule``
  form) to ``RuleGroup``/``Rule``, validated like ``promtool check rules``;
- ``alerter.template``: the Go-template subset of annotation and label templates,
  rendered without Go, with Prometheus' humanize functions;
- ``alerter.state``: the pending -> firing -> resolved machine of one alerting rule
  (``for``, ``keep_firing_for``, resend, ``ALERTS``/``ALERTS_FOR_STATE``), serialisable;
- ``alerter.events``: ``AlertEvent`` and its replica-stable ``Nats-Msg-Id``;
- ``alerter.group``: one group's rules evaluated in order at one instant;
- ``alerter.window``: the selected series in numpy windows, a PromQL ``Storage``;
- ``alerter.app``: the service (stream in, evaluation, events and KV state out);
- ``alerter.cli``: ``vigil rules check FILE...``.

Errors: ``alerter.errors``.
"""
