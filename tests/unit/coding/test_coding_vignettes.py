"""The labelled vignettes as a regression floor (targets from the issue)."""

import json
from pathlib import Path

from services.coding.domain import cpt, engine
from services.intake.domain.fhir import parse_intake

HERE = Path(__file__).resolve().parents[2] / "fixtures" / "vignettes"


def test_vignette_accuracy_meets_targets():
    labels = json.loads((HERE / "labels.json").read_text())
    assert len(labels) >= 40
    principal = em_ok = tp = fp = fn = 0
    for vid, lab in labels.items():
        r = engine.code_encounter(parse_intake(json.loads((HERE / f"{vid}.json").read_text())))
        dx = [d.code for d in r.diagnoses]
        ems = [p.code for p in r.procedures if cpt.is_em(p.code) or p.code in ("G0438", "G0439")]
        principal += dx[:1] == [lab["principal"]]
        em_ok += (ems[0] if ems else None) == lab["em"]
        tp += len(set(dx) & set(lab["diagnoses"]))
        fp += len(set(dx) - set(lab["diagnoses"]))
        fn += len(set(lab["diagnoses"]) - set(dx))
    n = len(labels)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert principal / n >= 0.9
    assert em_ok / n >= 0.95
    assert f1 >= 0.85
