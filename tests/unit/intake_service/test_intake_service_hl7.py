"""The HL7 v2 service parts that need no database: MLLP framing, reading ACKs, the settings,
sender checks and the frames the listener reads (with the hand-written messages of
tests/unit/intake_hl7v2 and a real-world one)."""

from __future__ import annotations

import pytest

from services.intake.hl7_intake import Answer, Hl7Intake
from services.intake.mapping import Codes
from services.intake.mllp import END, START, Frame, FrameReader, read_ack, wrap
from services.intake.settings import Hl7Settings, IntakeSettings, MllpSettings
from shared.settings import ConfigurationError, RuntimeSettings
from tests.conftest import FIXTURES
from tests.unit.intake_hl7v2.hl7v2_support import MESSAGES, registry

ADT = (MESSAGES / "visit_v251_adt_a04.hl7").read_bytes()
MDM = (MESSAGES / "visit_v251_mdm_t02.hl7").read_bytes()


# --------------------------------------------------------------------------- framing


def test_frames_split_across_reads_and_several_in_one_read():
    r = FrameReader(1 << 20)
    stream = b"\n" + wrap(ADT) + b"\r\n" + wrap(MDM) + wrap(b"MSH|x")
    got = []
    for cut in (1, 7, 100, 1000, len(stream)):  # chunk sizes, the end marker straddling some
        r = FrameReader(1 << 20)
        frames = []
        for i in range(0, len(stream), cut):
            frames += r.feed(stream[i : i + cut])
        got.append([f.data for f in frames])
    assert all(g == [ADT, MDM, b"MSH|x"] for g in got)


def test_the_end_marker_split_between_two_reads():
    r = FrameReader(1 << 20)
    assert r.feed(START + b"MSH|a" + END[:1]) == []
    assert r.feed(END[1:] + START + b"MSH|b" + END) == [Frame(b"MSH|a"), Frame(b"MSH|b")]


def test_a_0x1c_not_followed_by_cr_stays_in_the_frame():
    r = FrameReader(1 << 20)
    assert r.feed(START + b"MSH|a\x1c") == []
    assert r.feed(b"b" + END) == [Frame(b"MSH|a\x1cb")]


def test_an_oversized_frame_keeps_its_head_and_the_next_frame_is_read():
    r = FrameReader(2048)
    big = ADT + b"OBX|1|TX|||" + b"x" * 10_000
    frames = []
    for i in range(0, 20_000, 999):
        frames += r.feed((wrap(big) + wrap(MDM))[i : i + 999])
    assert [f.oversize for f in frames] == [True, False]
    assert frames[0].data.startswith(b"MSH|") and len(frames[0].data) <= 4096
    assert frames[1].data == MDM


# --------------------------------------------------------------------------- ACKs read back


def test_read_ack_v25_err_segments_and_escapes():
    ack = (
        b"MSH|^~\\&|RCM|R|EHR|N|20260511||ACK^A04^ACK|AC1|P|2.5.1\r"
        b"MSA|AE|C1\r"
        b"ERR||PV1^1|100^Segment sequence error^HL70357|E|||PV1: required segment missing from"
        b" ADT\\S\\A04\r"
        b"ERR||PID^1^7^1|102^Data type error^HL70357|W|||PID-7: expected a birth date\r"
    )
    a = read_ack(ack)
    assert (a.code, a.control_id) == ("AE", "C1")
    assert a.errors == [
        "PV1: required segment missing from ADT^A04",
        "PID-7: expected a birth date (warning)",
    ]


def test_read_ack_v23_msa3_and_err1():
    with_text = b"MSH|^~\\&|A|B|C|D|2026||ACK^A04|X|P|2.3\rMSA|AE|C1|PV1-19: required\r"
    assert read_ack(with_text + b"ERR|PV1^1^19^101&Required&HL70357\r").errors == [
        "PV1-19: required"
    ]
    only_err = b"MSH|^~\\&|A|B|C|D|2026||ACK^A04|X|P|2.3\rMSA|AE|C1\rERR|PV1^1^19~PID^1^7\r"
    assert read_ack(only_err).errors == ["PV1-19", "PID-7"]
    assert read_ack(b"hello").code == ""


# --------------------------------------------------------------------------- settings


def test_hl7_settings_build_the_rules(monkeypatch):
    monkeypatch.setenv("RCM_INTAKE_HL7_VISIT_KEYS", "PID-18,PV1-19")
    monkeypatch.setenv("RCM_INTAKE_HL7_SITE_READINESS", "east-hospital=hospital;north-clinic=note")
    monkeypatch.setenv("RCM_INTAKE_HL7_FACILITIES", "NORTHGATE=north-clinic")
    monkeypatch.setenv("RCM_INTAKE_HL7_SENDERS", "NORTHGATE=north-clinic;EAST=a,b")
    s = Hl7Settings()
    assert s.rules.visit_keys == (("PID-18",), ("PV1-19",))
    assert s.rules.readiness_for("east-hospital").label == "discharge+signed_note"
    assert s.rules.readiness_for("elsewhere").label == "note"  # clinic, the default
    assert s.rules.facilities == {"NORTHGATE": "north-clinic"}
    assert s.allowed_senders == {
        "NORTHGATE": frozenset({"north-clinic"}),
        "EAST": frozenset({"a", "b"}),
    }
    assert Hl7Settings(senders="").allowed_senders is None


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("RCM_INTAKE_HL7_VISIT_KEYS", "PV1-99", "visit keys"),
        ("RCM_INTAKE_HL7_READINESS", "whenever", "readiness"),
        ("RCM_INTAKE_HL7_SITE_READINESS", "north-clinic", "readiness"),
        ("RCM_INTAKE_HL7_SENDERS", "NORTHGATE", "RCM_INTAKE_HL7_SENDERS"),
        ("RCM_INTAKE_HL7_SENDERS", "NORTHGATE= , ", "RCM_INTAKE_HL7_SENDERS"),
    ],
)
def test_a_bad_hl7_setting_stops_the_start_naming_it(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=says):
        IntakeSettings()


def test_unsafe_listener_settings_are_refused():
    with pytest.raises(ConfigurationError, match="go together"):
        IntakeSettings(mllp=MllpSettings(tls_cert="cert.pem"))
    with pytest.raises(ConfigurationError, match="CLIENT_CA"):
        IntakeSettings(mllp=MllpSettings(tls_client_ca="ca.pem"))
    prod = RuntimeSettings(env="production")
    safe = {
        "connections": {"kafka_bootstrap_servers": "k:9092", "database_url": "postgresql://x"},
        "kafka": {"security_protocol": "SSL"},
        "auth": {"token_issuer": "https://idp.example/realms/rcm", "token_audience": "rcm"},
    }
    with pytest.raises(ConfigurationError, match="test hook"):
        IntakeSettings(runtime=prod, mllp=MllpSettings(ack_delay_seconds=1), **safe)
    with pytest.raises(ConfigurationError, match="RCM_INTAKE_HL7_SENDERS"):
        IntakeSettings(runtime=prod, mllp=MllpSettings(port=2575), **safe)
    ok = IntakeSettings(
        runtime=prod, mllp=MllpSettings(port=2575), hl7=Hl7Settings(senders="A=s"), **safe
    )
    assert ok.mllp.port == 2575 and not ok.mllp.tls
    # `rcm serve intake --mllp-port` sets the port after the settings were read: checked again
    late = IntakeSettings(runtime=prod, **safe)
    late.mllp.port = 2575
    with pytest.raises(ConfigurationError, match="RCM_INTAKE_HL7_SENDERS"):
        late.check_hl7()


# --------------------------------------------------------------------------- reading frames


def _intake(**settings) -> Hl7Intake:
    s = Hl7Settings(facilities="NORTHGATE=north-clinic", **settings)
    return Hl7Intake(None, None, Codes(), s, lambda: None)  # type: ignore[arg-type]


def test_a_frame_is_read_into_its_visit():
    item = _intake().read_frame(ADT, registry())
    assert not item.rejected and item.key == ("NORTHGATE", "ADT-V20260511-01")
    assert item.received.visit_key == "north-clinic|PV1-19|V20260511-01"
    assert item.data == ADT and not item.text_form


def test_senders_not_allowed_are_refused_at_msh4():
    strict = _intake(senders="EASTBROOK=east-hospital")
    item = strict.read_frame(ADT, registry())
    assert item.rejected
    [err] = [p for p in item.received.problems if p.is_error]
    assert (err.segment, err.field, str(err)) == (
        "MSH",
        4,
        "MSH-4 (segment 1): not an allowed sender",
    )
    other_site = _intake(senders="NORTHGATE=east-hospital")
    [err] = [p for p in other_site.read_frame(ADT, registry()).received.problems if p.is_error]
    assert err.message == "the sender may not send for the site the message names"
    assert not _intake(senders="NORTHGATE=north-clinic").read_frame(ADT, registry()).rejected


def test_a_sender_of_one_site_gives_its_messages_that_site():
    adt = ADT.replace(b"NORTHGATE", b"ELSEWHERE")
    assert _intake().read_frame(adt, registry()).received.site_id == "unassigned"
    one = _intake(senders="ELSEWHERE=north-clinic").read_frame(adt, registry())
    assert one.received.site_id == "north-clinic" and not one.rejected


def test_a_file_of_messages_is_read_one_by_one_as_text():
    body = (MESSAGES / "batch_v251.hl7").read_bytes()
    items, problems = _intake().read_body(body, registry())
    assert [i.key[1] for i in items] == ["ADT-V20260511-01", "MDM-V20260511-01", "DFT-V20260511-01"]
    assert all(i.text_form and i.data.startswith(b"MSH|") for i in items) and problems == []


def test_an_oversized_frame_is_refused_ar_naming_its_control_id():
    item = _intake().read_oversize(ADT[:300], 1024)
    assert item.rejected and item.received.meta.control_id == "ADT-V20260511-01"
    answer = Answer("AR", item.received.problems, "", charset="UNICODE UTF-8")
    assert answer.ack_bytes() == b""
    nothing = _intake().read_oversize(b"\x00\x01", 1024)
    assert nothing.rejected and nothing.received.meta is None


def test_the_ack_of_a_refused_real_message_names_segment_and_field_only():
    from services.intake.domain.hl7v2 import build_ack

    real = FIXTURES / "realworld/hl7v2/ms-fhir-converter/MDM-T02-03.hl7"
    item = _intake().read_frame(real.read_bytes(), registry())
    assert item.rejected
    ack = build_ack(item.received.meta, "AE", item.received.problems).encode()
    assert read_ack(ack).code == "AE"
    assert any(e.startswith("PV1-19") for e in read_ack(ack).errors)
    patient = real.read_bytes().split(b"\n")[2].split(b"|")[5].split(b"^")[0]  # PID-5 family
    assert patient and patient not in ack


def test_an_ack_is_written_in_the_message_character_set():
    latin = Answer("AA", [], "MSH|^~\\&|é", charset="8859/1")
    assert latin.ack_bytes() == "MSH|^~\\&|é".encode("latin-1")
    assert Answer("AA", [], "é", charset="UNICODE UTF-16").ack_bytes() == "é".encode()
