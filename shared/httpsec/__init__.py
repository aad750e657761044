"""Security of Vigil's HTTP servers (web service and notifier), one implementation for both.

* ``hashing``: salted scrypt/PBKDF2 hashes of passwords and tokens (PHC strings);
* ``policy``: which role a method and path need (open, read, admin);
* ``verify``: the ``Authorization`` header against the configured users and
  tokens, with a cache so a burst of queries does not re-run scrypt;
* ``middleware``: the ASGI middleware both apps install (CORS, then the guard);
* ``tls``: the TLS settings as uvicorn options;
* ``cli``: ``vigil auth hash`` and ``vigil auth token``.

The configuration models are in ``shared.config.http``. This package imports
Starlette only in ``middleware`` (server installs have it; agents never import it).
"""
