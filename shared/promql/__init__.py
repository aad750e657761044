"""PromQL: parse with ``promql-parser``, evaluate with numpy, read through ``Storage``.

Server-side only (numpy, promql-parser): agents never import this package.
"""
