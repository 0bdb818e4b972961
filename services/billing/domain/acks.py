"""Acknowledgement readers: 999 (transaction-set level) and 277CA (claim level).

999: one ``Ack999`` per AK2 (i.e. per 837 ST02 we sent), with every IK3/IK4 error and
its segment position inside that transaction (ST = 1), so ``Batch837.claim_at`` can name
the claim. 277CA: one ``ClaimAck`` per patient (HL ``PT``) loop, keyed by the patient
control number we sent in CLM01 (= claim id).
Both raise ``shared.x12.X12Error`` naming the segment number and id on malformed input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.x12 import X12Error, check_envelope, shown, split_segments

from . import ack_codes
from .acks_277 import Ack277CA, BatchAck, ClaimAck, StatusDetail, parse_277ca, parse_277ca_file

_STATUSES = ", ".join(ack_codes.ACK_STATUS)

__all__ = [
    "Ack277CA",
    "Ack999",
    "AckError",
    "BatchAck",
    "ClaimAck",
    "Group999",
    "StatusDetail",
    "parse_277ca",
    "parse_277ca_file",
    "parse_999",
    "parse_999_groups",
]


@dataclass(frozen=True, slots=True)
class AckError:
    level: str  # "segment", "element", "transaction" or "group"
    code: str  # IK304, IK403 or IK502..IK506
    message: str
    segment_id: str | None = None  # IK301
    segment_position: int | None = None  # IK302, ST = 1
    loop_id: str | None = None  # IK303
    element_position: int | None = None  # IK401-1
    component_position: int | None = None  # IK401-2
    element_reference: str | None = None  # IK402
    bad_value: str | None = None  # IK404 (may be PHI: never log it)


@dataclass(frozen=True)
class Ack999:
    st_control_number: str  # AK202: the 837 transaction this answers
    group_control_number: str  # AK102
    transaction_set: str  # AK201, "837"
    status: str  # IK501: A, E, R, M, W, X
    errors: list[AckError] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status in ("A", "E")

    @property
    def message(self) -> str:
        return ack_codes.ACK_STATUS.get(self.status, f"status {self.status}")


def _int(value: str, seg_no: int, seg_id: str, what: str) -> int | None:
    if value == "":
        return None
    if not value.isdigit():
        raise X12Error(f"{what} {shown(value)} is not a number", seg_no, seg_id)
    return int(value)


def _el(seg: list[str], i: int) -> str:
    return seg[i] if len(seg) > i else ""


@dataclass(frozen=True)
class Group999:
    """One AK1..AK9 loop: the acknowledgement of one 837 functional group (GS06)."""

    group_control_number: str
    status: str | None  # AK901: A, E, P (partial), R...; None if AK9 is missing
    errors: list[AckError]  # AK905-AK909 group-level errors
    transactions: list[Ack999]

    @property
    def accepted(self) -> bool:
        return self.status in ("A", "E", "P")


def parse_999(text: str) -> list[Ack999]:
    """Every 837 transaction acknowledged in a 999 file. Raises X12Error if malformed."""
    return [ack for group in parse_999_groups(text) for ack in group.transactions]


def parse_999_groups(text: str) -> list[Group999]:
    """See ``_parse_999_groups``; a file whose envelope is cut short or miscounted is refused whole."""
    result = _parse_999_groups(text)
    check_envelope(split_segments(text)[0])
    return result


def _parse_999_groups(text: str) -> list[Group999]:
    """The 999 by functional group, with AK9 group status (a group can be rejected whole)."""
    segments, seps = split_segments(text)
    groups: list[Group999] = []
    acks: list[Ack999] = []
    group = ""
    current: dict | None = None
    last_ik3: dict | None = None
    seen_st = False
    for n, seg in enumerate(segments, start=1):
        sid = seg[0]
        if sid == "ST":
            if _el(seg, 1) != "999":
                raise X12Error(
                    f"expected a 999 transaction, found ST01 {shown(_el(seg, 1))}", n, sid
                )
            seen_st = True
        elif sid == "AK1":
            group = _el(seg, 2)
            if not group:
                raise X12Error("AK102 group control number missing", n, sid)
            acks = []
            groups.append(Group999(group, None, [], acks))
        elif sid == "AK2":
            if not groups:
                raise X12Error("AK2 before AK1", n, sid)
            if current is not None:
                raise X12Error("AK2 before the previous AK2's IK5", n, sid)
            if not _el(seg, 2):
                raise X12Error("AK202 transaction set control number missing", n, sid)
            current = {"st": _el(seg, 2), "set": _el(seg, 1), "errors": []}
            last_ik3 = None
        elif sid == "IK3":
            if current is None:
                raise X12Error("IK3 outside an AK2 loop", n, sid)
            code = _el(seg, 4)
            last_ik3 = {
                "segment_id": _el(seg, 1) or None,
                "segment_position": _int(_el(seg, 2), n, sid, "IK302 segment position"),
                "loop_id": _el(seg, 3) or None,
            }
            current["errors"].append(
                AckError(
                    "segment", code, ack_codes.describe_999_error(segment_error=code), **last_ik3
                )
            )
        elif sid == "IK4":
            if current is None or last_ik3 is None:
                raise X12Error("IK4 without a preceding IK3", n, sid)
            pos = _el(seg, 1).split(seps.component)
            code = _el(seg, 3)
            current["errors"].append(
                AckError(
                    "element",
                    code,
                    ack_codes.describe_999_error(element_error=code),
                    element_position=_int(pos[0], n, sid, "IK401 element position"),
                    component_position=_int(pos[1], n, sid, "IK401-2") if len(pos) > 1 else None,
                    element_reference=_el(seg, 2) or None,
                    bad_value=_el(seg, 4) or None,
                    **last_ik3,
                )
            )
        elif sid == "IK5":
            if current is None:
                raise X12Error("IK5 outside an AK2 loop", n, sid)
            status = _el(seg, 1)
            if status not in ack_codes.ACK_STATUS:
                raise X12Error(
                    f"IK501 status {shown(status)} unknown (expected one of {_STATUSES})", n, sid
                )
            for code in (c for c in seg[2:7] if c):
                msg = ack_codes.TRANSACTION_ERRORS.get(code, f"transaction error {code}")
                current["errors"].append(AckError("transaction", code, msg))
            acks.append(Ack999(current["st"], group, current["set"], status, current["errors"]))
            current = None
        elif sid in ("AK9", "SE") and current is not None:
            raise X12Error("AK2 loop has no IK5", n, sid)
        elif sid == "AK9":
            status = _el(seg, 1)
            if not groups or status not in ack_codes.ACK_STATUS:
                raise X12Error(
                    f"AK9 without AK1 or with unknown status {shown(status)}"
                    f" (expected one of {_STATUSES})",
                    n,
                    sid,
                )
            errors = [
                AckError("group", c, ack_codes.GROUP_ERRORS.get(c, f"group error {c}"))
                for c in seg[5:10]
                if c
            ]
            groups[-1] = Group999(group, status, errors, acks)
    if not seen_st:
        raise X12Error("no ST segment: not a 999 transaction", None, None)
    return groups
