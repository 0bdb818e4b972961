"""Reference data the billing handlers need, loaded once per process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from services.billing import repository as repo
from services.billing.domain.chargemaster import (
    Chargemaster,
    load_sample_chargemaster,
    parse_chargemaster_csv,
)
from services.billing.domain.ncci import NcciTables, parse_mue, parse_ncci_ptp
from services.billing.domain.payer_rules import (
    PayerRules,
    load_payer_rules,
    load_sample_payer_rules,
)
from services.billing.settings import BillingSettings


@dataclass
class BillingContext:
    outbound_dir: Path
    payer_rules: PayerRules
    ncci: NcciTables | None
    max_claims_per_file: int = 1000
    sender_id: str = "RCMSUBMITTER"
    receiver_id: str = "CLEARINGHOUSE"
    submitter_name: str = "RCM BILLING"
    usage: str = "P"
    crossover_wait_days: int = 30
    crossover_check_seconds: float = 3600.0
    _chargemasters: dict[str, Chargemaster] = field(default_factory=dict)
    # Set after a batch commits: the 837 file writer wakes instead of waiting for its poll.
    files_written: asyncio.Event = field(default_factory=asyncio.Event)

    async def chargemaster(self, conn: asyncpg.Connection, site_id: str) -> Chargemaster:
        """The site's loaded chargemaster, else the bundled sample (cached per process)."""
        cm = self._chargemasters.get(site_id)
        if cm is None:
            csv_text = await repo.chargemaster_csv(conn, site_id)
            cm = (
                parse_chargemaster_csv(csv_text, name=site_id)
                if csv_text
                else load_sample_chargemaster(site_id)
            )
            self._chargemasters[site_id] = cm
        return cm

    @classmethod
    def from_settings(cls, s: BillingSettings) -> BillingContext:
        c = s.claims
        rules = (
            load_payer_rules(c.payer_rules_file.read_text())
            if c.payer_rules_file
            else load_sample_payer_rules()
        )
        ncci = None
        if c.ncci_ptp_file or c.mue_file:
            ncci = parse_ncci_ptp(c.ncci_ptp_file.read_text()) if c.ncci_ptp_file else None
            if c.mue_file:
                ncci = parse_mue(c.mue_file.read_text(), ncci)
        return cls(
            outbound_dir=s.outbound_dir,
            payer_rules=rules,
            ncci=ncci,
            max_claims_per_file=c.max_claims_per_file,
            sender_id=c.sender_id,
            receiver_id=c.receiver_id,
            submitter_name=c.submitter_name,
            usage=c.usage,
            crossover_wait_days=c.crossover_wait_days,
            crossover_check_seconds=c.crossover_check_seconds,
        )
