"""Alertmanager's model, shared by the notifier and the web service.

Label matchers (``matchers``), silences (``silence``: state and validation;
``silences``: the store over the NATS KV bucket and the silences stream), API v2
shapes (``models``), API filters (``filters``) and the API's errors
(``apierrors``). Both services write silences through ``SilenceStore``, so a
silence made in the UI and one made with ``amtool`` are the same record.
"""
