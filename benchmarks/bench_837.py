"""Benchmark: price, scrub and write 837P claims in batches; compare with pyx12 validation.

Run: .venv/bin/python benchmarks/bench_837.py [--claims 10000] [--batch 1000] [--validate-batches 1]
Prints one JSON object. Target: >= 5000 claims/s for build_claim + build_837.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from datetime import date, datetime
from decimal import Decimal

from services.billing.domain.chargemaster import load_sample_chargemaster
from services.billing.domain.claim import build_claim
from services.billing.domain.scrubber import scrub
from services.billing.domain.x12_837 import build_837
from shared import icd10cm
from shared.events import (
    Address,
    CodedDiagnosis,
    CodedProcedure,
    Coverage,
    Encounter,
    EncounterCodedPayload,
    Organization,
    Person,
    Provider,
)

SITES = {
    "north-clinic": ("North Clinic", "1234567893", "627011234"),
    "south-urgent-care": ("South Urgent Care", "1245319599", "627050001"),
    "east-hospital": ("East Hospital", "1003000126", "627100002"),
}
VISITS = [
    (["S93401A", "W010XXA"], [("99213", ["25"], [1, 2]), ("73610", [], [1]), ("29540", [], [1])]),
    (["J069", "R509"], [("99214", [], [1, 2]), ("87880", [], [1]), ("87804", [], [1])]),
    (
        ["E119", "I10", "E785"],
        [("99214", [], [1, 2, 3]), ("83036", [], [1]), ("80061", [], [3]), ("36415", [], [1])],
    ),
    (["Z23"], [("90686", [], [1]), ("G0008", [], [1])]),
]


def make_encounters(n: int) -> list[EncounterCodedPayload]:
    out = []
    home = Address(line1="12 Elm St", city="Springfield", state="IL", postal_code="62704")
    for i in range(n):
        site_id = list(SITES)[i % 3]
        name, npi, zip9 = SITES[site_id]
        bp = Organization(
            name=name,
            npi=npi,
            tax_id="123456789",
            address=Address(line1="1 Main St", city="Springfield", state="IL", postal_code=zip9),
        )
        patient = Person(
            first_name=f"Pat{i}",
            last_name="Doe",
            birth_date=date(1980, 1, 1 + i % 28),
            gender="FM"[i % 2],
            address=home,
        )
        coverages = [
            Coverage(
                payer_id="SAMPLE-COMMERCIAL",
                payer_name="Sample Commercial",
                member_id=f"W{i:09d}",
                group_number="G1",
            )
        ]
        if i % 5 == 0:
            coverages.append(
                Coverage(
                    payer_id="SAMPLE-MEDICAID",
                    payer_name="Sample Medicaid",
                    member_id=f"M{i:08d}",
                    sequence="secondary",
                    filing_indicator="MC",
                )
            )
        dx, procs = VISITS[i % len(VISITS)]
        enc = Encounter(
            encounter_id=f"E{i}",
            site_id=site_id,
            service_date=date(2026, 5, 5),
            billing_provider=bp,
            patient=patient,
            coverages=coverages,
            rendering_provider=Provider(npi="1234567893", first_name="Ann", last_name="Lee"),
        )
        out.append(
            EncounterCodedPayload(
                encounter=enc,
                diagnoses=[CodedDiagnosis(code=c) for c in dx],
                procedures=[
                    CodedProcedure(code=c, modifiers=m, diagnosis_pointers=p) for c, m, p in procs
                ],
            )
        )
    return out


def pyx12_seconds(text: str) -> tuple[float, bool]:
    import pyx12.params
    import pyx12.x12n_document

    t0 = time.perf_counter()
    ok = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(), src_file=io.StringIO(text), fd_997=None, fd_html=None
    )
    return time.perf_counter() - t0, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--claims", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--validate-batches", type=int, default=1, help="batches to check with pyx12")
    args = ap.parse_args()

    encounters = make_encounters(args.claims)
    charges = {site: load_sample_chargemaster(site) for site in SITES}
    icd10cm.load()  # the code set, outside the timed loop

    t_build = t_scrub = t_x12 = 0.0
    batches, findings, total = [], 0, Decimal("0.00")
    for start in range(0, args.claims, args.batch):
        chunk = encounters[start : start + args.batch]
        t0 = time.perf_counter()
        claims = [
            build_claim(e, claim_id=f"C{start + k:09d}", chargemaster=charges[e.encounter.site_id])
            for k, e in enumerate(chunk)
        ]
        t1 = time.perf_counter()
        findings += sum(len(scrub(c, is_billable=icd10cm.is_billable_on)) for c in claims)
        t2 = time.perf_counter()
        batch = build_837(
            claims,
            interchange_control_number=1 + start // args.batch,
            group_control_number=1 + start // args.batch,
            created_at=datetime(2024, 3, 6, 12, 0),
        )
        t3 = time.perf_counter()
        t_build, t_scrub, t_x12 = t_build + t1 - t0, t_scrub + t2 - t1, t_x12 + t3 - t2
        total += sum(c.total_charge for c in claims)
        batches.append(batch)

    validated = batches[: args.validate_batches]
    pyx12_time, all_ok = 0.0, True
    for b in validated:
        seconds, ok = pyx12_seconds(b.text)
        pyx12_time += seconds
        all_ok = all_ok and ok
    claims_validated = sum(len(b.claim_ids) for b in validated)
    x12_rate = args.claims / t_x12
    pyx12_rate = claims_validated / pyx12_time if pyx12_time else None
    print(
        json.dumps(
            {
                "claims": args.claims,
                "batch_size": args.batch,
                "files": len(batches),
                "scrub_findings": findings,
                "total_charge": str(total),
                "build_claim_per_s": round(args.claims / t_build),
                "scrub_per_s": round(args.claims / t_scrub),
                "build_837_per_s": round(x12_rate),
                "claims_per_s": round(args.claims / (t_build + t_x12)),
                "claims_per_s_with_scrub": round(args.claims / (t_build + t_scrub + t_x12)),
                "target_claims_per_s": 5000,
                "pyx12_claims_validated": claims_validated,
                "pyx12_valid": all_ok,
                "pyx12_claims_per_s": round(pyx12_rate) if pyx12_rate else None,
                "pyx12_time_over_build_837_time": round(x12_rate / pyx12_rate, 1)
                if pyx12_rate
                else None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
