"""`rcm code FILE.hl7` offline, and what `rcm submit FILE.hl7` sends: the hand-written visit
of tests/unit/intake_hl7v2 and the real-world messages of tests/fixtures/realworld/hl7v2."""

from __future__ import annotations

import json

from rcm.cli.intake_cmds import hl7_messages, is_hl7, split_acks
from rcm.cli.main import main
from services.intake.domain.hl7v2 import parse_message
from tests.conftest import FIXTURES
from tests.unit.intake_hl7v2.hl7v2_support import MESSAGES

REAL = FIXTURES / "realworld" / "hl7v2"
V251 = [str(MESSAGES / f"visit_v251_{n}.hl7") for n in ("adt_a04", "mdm_t02", "dft_p03")]


def test_rcm_code_assembles_the_visit_of_three_files_and_codes_it(capsys, monkeypatch):
    monkeypatch.setenv("RCM_INTAKE_HL7_FACILITIES", "NORTHGATE=north-clinic")
    assert main(["code", *V251]) == 0
    out, err = capsys.readouterr()
    [coded] = json.loads(out)
    assert coded["encounter_id"] == "V20260511-01" and coded["file"] == ", ".join(V251)
    assert [d["code"] for d in coded["diagnoses"]] == ["S93401A"]
    assert [(p["code"], p["modifiers"]) for p in coded["procedures"]] == [
        ("99213", []),
        ("73610", ["RT"]),
    ]
    assert coded["route"] == "auto"
    assert "missing billing data" in err and "Quinlan" not in err


def test_rcm_code_says_when_a_visit_is_not_ready_and_codes_it_as_it_stands(capsys):
    assert main(["code", V251[0], V251[1]]) == 0  # no charges: the clinic rule wants a note
    main(["code", V251[0]])  # registration only: not ready for coding
    out, err = capsys.readouterr()
    assert "not ready for coding (awaiting note); coded as it stands" in err


def test_rcm_code_names_a_refused_message_and_exits_2(capsys):
    bad = REAL / "cdc-trusted-intermediary" / "msh_present_but_missing_msh-9.hl7"
    assert main(["code", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "message 1 (MSH-10 111111): MSH-9 (segment 1, line 1): required: the message type" in err
    assert "1 problem(s) in the input; 0 encounter(s) coded" in err


def test_hl7_files_are_known_by_name_or_by_their_first_segment(tmp_path):
    lf = tmp_path / "message.txt"
    lf.write_bytes(b"\xef\xbb\xbf\r\n" + (MESSAGES / "visit_v23.hl7").read_bytes())
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"resourceType": "Bundle"}')
    assert is_hl7(str(lf)) and is_hl7(V251[0]) and not is_hl7(str(bundle))
    assert is_hl7(str(REAL / "cdc-prime-reportstream" / "Example-hl7-file.hl7"))


def test_submit_sends_each_message_in_its_own_character_set(tmp_path):
    adt = (MESSAGES / "visit_v251_adt_a04.hl7").read_bytes()
    latin = adt.replace(b"UNICODE UTF-8", b"8859/1").replace(
        b"Quinlan", "Quinlán".encode("latin-1")
    )
    f = tmp_path / "two.hl7"
    f.write_bytes(latin + b"\r" + adt.replace(b"Quinlan", "Quinlán".encode()))
    first, second = hl7_messages(str(f))
    assert "Quinlán".encode("latin-1") in first and "Quinlán".encode() in second
    assert parse_message(first).first("PID").get(5) == "Quinlán"
    assert parse_message(second).first("PID").get(5) == "Quinlán"
    batch = hl7_messages(str(MESSAGES / "batch_v251.hl7"))
    assert [parse_message(m).meta.control_id for m in batch] == [
        "ADT-V20260511-01",
        "MDM-V20260511-01",
        "DFT-V20260511-01",
    ]


def test_the_acks_of_a_post_are_split_one_per_message():
    acks = b"MSH|^~\\&|R|F|S|G|2026||ACK^A04^ACK|A1|P|2.5.1\rMSA|AA|1\rMSH|^~\\&|R|F|S|G|2026||ACK|A2|P|2.5.1\rMSA|AE|2\rERR||PV1^1|100|E\r"
    parts = split_acks(acks)
    assert len(parts) == 2 and parts[1].endswith(b"ERR||PV1^1|100|E\r")
