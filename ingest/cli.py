"""``vigil db migrate [--database-url URL] [--config FILE]``: apply pending schema migrations."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from ingest.prepare import prepare_database
from shared.config.loader import load_config
from shared.errors import VigilError
from shared.log import configure_logging


def database_url(explicit: str | None, config_path: str | None) -> str | None:
    """``explicit``, else storage.database_url of the config (which VIGIL_DATABASE_URL overrides)."""
    if explicit:
        return explicit
    secret = load_config(config_path).config.storage.database_url
    return secret.get_secret_value() if secret is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vigil db", description="Vigil database commands.")
    sub = parser.add_subparsers(dest="command", required=True)
    mig = sub.add_parser("migrate", help="apply pending schema migrations (idempotent)")
    mig.add_argument(
        "--database-url", help="postgresql:// URL (default: config, VIGIL_DATABASE_URL)"
    )
    mig.add_argument("--config", "-c", default=os.environ.get("VIGIL_CONFIG"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        url = database_url(args.database_url, args.config)
        if url is None:
            sys.stderr.write(
                "vigil db migrate: cannot migrate: no database URL "
                "(--database-url, storage.database_url or VIGIL_DATABASE_URL)\n"
            )
            return 2
        config = load_config(args.config).config

        prepared = asyncio.run(prepare_database(url, config.storage))
        applied = prepared.applied
    except VigilError as exc:
        sys.stderr.write(f"vigil db migrate: {exc}\n")
        return 1
    sys.stdout.write(
        (f"applied {len(applied)} migration(s): {applied}" if applied else "schema up to date")
        + f"; rollups kept by {'TimescaleDB policies' if prepared.mode.value == 'timescale' else 'Vigil jobs'}"
        + f" ({prepared.mode.value} license)\n"
    )
    return 0
