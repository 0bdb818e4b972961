"""Progress lines for long CLI runs."""

import sys
import time

_last_progress = [0.0]


def progress(done: int, total: int) -> None:
    """A live counter on a terminal; a line every 10 s in a log."""
    if sys.stderr.isatty():
        print(f"\r  settled {done}/{total}", end="", file=sys.stderr, flush=True)
    elif time.monotonic() - _last_progress[0] > 10 or done == total:
        _last_progress[0] = time.monotonic()
        print(f"  settled {done}/{total}", file=sys.stderr, flush=True)
