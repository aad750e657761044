"""TLS of the HTTP servers: ``HttpTLSConfig`` as uvicorn's ``ssl_*`` options."""

from __future__ import annotations

import ssl
from typing import Any

from shared.config.http import HttpTLSConfig


def uvicorn_ssl_options(tls: HttpTLSConfig | None) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``: none without TLS.

    With ``client_ca_file`` a client certificate signed by that CA is required
    (mutual TLS). Paths are already resolved against the config file's folder.
    """
    if tls is None:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": str(tls.cert_file),
        "ssl_keyfile": str(tls.key_file),
    }
    if tls.client_ca_file is not None:
        options["ssl_ca_certs"] = str(tls.client_ca_file)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options
