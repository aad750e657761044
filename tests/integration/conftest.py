"""Integration tests hold sockets and subprocess pipes: make a leak fail where it happens."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage_after_module() -> Iterator[None]:
    # A leaked socket in a reference cycle is only reported when the garbage
    # collector frees it, which may be during some unrelated later test;
    # collecting here pins the ResourceWarning to this module.
    yield
    gc.collect()
