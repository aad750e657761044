"""Alertmanager API v2, served by the notifier on its listen address.

Modules here: ``alerts`` (postable alerts to ``AlertEvent``s on the alerts
stream) and ``server`` (the FastAPI app, the operations endpoints of
``shared.admin`` mounted beside it, run by uvicorn). The model it shares with
the web service is ``shared.alertmanager``: the OpenAPI shapes (``models``),
``filter=`` matchers (``filters``), silences kept in the KV bucket with
compare-and-set and announced on the silences stream (``silences``), and the
API's exceptions (``apierrors``: ``ApiError`` answered as a JSON string with its
status; ``BadRequest`` 400, ``NotFound`` 404).
"""

from notifier.api.server import ApiServer

__all__ = ["ApiServer"]
