"""``vigil devenv``: pieces of the local development environment, one at a time.

vigil devenv rootfs     build (once) the cached TimescaleDB root filesystem, print its path
vigil devenv info       print the cache folder and whether the rootfs is built
"""

from __future__ import annotations

import argparse
import sys

from shared.devenv.rootfs import built_rootfs, default_cache_dir, ensure_rootfs
from shared.errors import DevEnvError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vigil devenv", description="the local development environment"
    )
    parser.add_argument("what", choices=["rootfs", "info"])
    args = parser.parse_args(argv)
    try:
        if args.what == "rootfs":
            print(ensure_rootfs())
        else:
            print(f"cache: {default_cache_dir()}")
            print(f"rootfs: {built_rootfs() or 'not built (vigil devenv rootfs builds it)'}")
    except DevEnvError as exc:
        print(f"vigil devenv: {exc}", file=sys.stderr)
        return 1
    return 0
