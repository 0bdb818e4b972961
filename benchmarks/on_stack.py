"""What the benchmarks that run services on the local stack share: the ``--run-dir`` option and
running one bench on the stack (started for the run and stopped after, unless it was up)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from rcm import localstack as stack
from shared.settings import ConnectionSettings, RuntimeSettings, ServiceSettings

Bench = Callable[[argparse.Namespace, ServiceSettings, dict], Awaitable[dict]]


def add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="local stack run dir (default: RCM_RUN_DIR or ~/.cache/rcm/run)",
    )


def run_on_stack(bench: Bench, args: argparse.Namespace) -> dict:
    """``bench`` with the stack's settings and endpoints; its result is printed as JSON."""
    runtime = RuntimeSettings(run_dir=args.run_dir) if args.run_dir else RuntimeSettings()
    settings = ServiceSettings(runtime=runtime, connections=ConnectionSettings())
    was_up = settings.stack_file().exists()
    endpoints = stack.up(settings)
    try:
        result = asyncio.run(bench(args, settings, endpoints))
    finally:
        if not was_up:
            stack.down(settings)
    print(json.dumps(result, indent=2))
    return result
