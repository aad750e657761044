"""Alertmanager API v2, served by the notifier on its listen address.

Modules: ``models`` (the OpenAPI shapes in and out, Alertmanager's field
names), ``filters`` (``filter=`` matchers and the receiver regex),
``silences`` (Alertmanager's silence rules, kept in the KV bucket with
compare-and-set and announced on the silences stream), ``alerts`` (postable
alerts to ``AlertEvent``s on the alerts stream), ``server`` (the FastAPI app,
the operations endpoints of ``shared.admin`` mounted beside it, run by uvicorn).

Exceptions::

    ApiError(status, message)        answered as a JSON string with that status
     +-- BadRequest                  400: the request is invalid
     +-- NotFound                    404: no such silence
"""

from notifier.api.errors import ApiError, BadRequest, NotFound
from notifier.api.server import ApiServer, NotifierView

__all__ = ["ApiError", "ApiServer", "BadRequest", "NotFound", "NotifierView"]
