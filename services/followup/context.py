"""What followup's handlers, API and loops share at run time, built once per process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.followup.domain.deadlines import PayerPolicies


@dataclass
class FollowupContext:
    policies: PayerPolicies | None
    # Set when a 276 file was queued: the file writer wakes instead of waiting for its poll.
    files_written: asyncio.Event = field(default_factory=asyncio.Event)
