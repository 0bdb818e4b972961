"""Waiting that a service's shutdown cuts short."""

from __future__ import annotations

import asyncio


async def wait_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``stop``; True when it is set (the caller should finish)."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return stop.is_set()
    return True
