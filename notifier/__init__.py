"""``vigil-notifier``: routes, groups, silences and delivers alert notifications.

Alertmanager-compatible: its configuration file, routing tree, group keys, timers,
silences, inhibition and webhook payload. The parts, each pure unless said:

==========================  ===========================================================
``config/``                 ``alertmanager.yml`` as pydantic models; cross-file checks
``matchers.py``             ``=``, ``!=``, ``=~``, ``!~`` and Alertmanager's text syntax
``route.py``                the routing tree, inheritance, ``continue``, group keys
``alerts.py``               the alert store (merge, resolved-by-``endsAt``)
``group.py``                aggregation groups: group_wait / group_interval timers
``nflog.py``                what was sent; whether to send again (repeat_interval)
``silence.py``              silences: matching and pending/active/expired
``inhibit.py``              inhibition rules
``timeinterval.py``         mute/active time intervals
``receivers/``              one module per integration type behind ``base.Integration``
``delivery.py``             retries, back-off, jitter, Retry-After (the plan is pure)
``ssrf.py``                 which addresses may be sent to (async: resolves names)
``nflogkv.py``              I/O: the notification log in KV, with a delivery lease
``pipeline.py``             I/O: one flush through mute, silence, inhibit, log, delivery
``app.py``                  I/O: NATS consumer, timers, silences watch, admin port
==========================  ===========================================================
"""
