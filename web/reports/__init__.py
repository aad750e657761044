"""Reports over stored samples: SLA (availability, error budget, downtime) and capacity.

Modules: ``periods`` (the windows an SLA report covers), ``data`` (series and
points read from TimescaleDB behind the ``Database`` Protocol), ``sla`` (the
availability arithmetic and the report), ``capacity`` (linear trend and
projected date full), ``export`` (the SLA report as JSON and CSV, one set of
rows), ``router`` (the ``/api/vigil/sla``, ``/api/vigil/sla.csv`` and
``/api/vigil/capacity`` endpoints), ``errors``. docs/reports.md describes the
definitions for users.
"""
