"""pyx12 maps for 005010X212 (276 and 277), built for the tests.

pyx12 4.0.0 ships no 276 5010 map, and its ``277.5010.X212.xml`` is not
registered in ``maps.xml`` because it is broken (GS01 RA / GS08 005010X218 copied
from the 820 map, the SE segment outside the ST loop, HL levels in wrapper loops
instead of nested). This fixture copies pyx12's map directory and writes:

- ``277.5010.X212.xml``: pyx12's own X212 segment and element definitions,
  re-nested the way pyx12's working 277CA (X214) map nests HL levels, inside
  the X214 envelope with GS01/GS08/ST03 set for X212;
- ``276.5010.X212.xml``: derived from that 277 the way the 276 TR3 differs from
  the 277 one: request BHT (0010/13, no BHT06), no payer contact, no receiver and
  provider status loops, trace type 1, no STC, subscriber and dependent
  demographics (DMG), claim submitted charges (AMT*T3).

Both are registered in the copied ``maps.xml``; validate with ``map_path``.
"""

from __future__ import annotations

import copy
import io
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

PYX12_MAPS = Path(__import__("pyx12").__file__).parent / "map"


def _el(xid: str, data_ele: str, name: str, usage: str, seq: str, codes=()) -> ET.Element:
    e = ET.Element("element", xid=xid)
    for tag, text in (("data_ele", data_ele), ("name", name), ("usage", usage), ("seq", seq)):
        ET.SubElement(e, tag).text = text
    if codes:
        vc = ET.SubElement(e, "valid_codes")
        for c in codes:
            ET.SubElement(vc, "code").text = c
    return e


def _segment(xid: str, name: str, usage: str, pos: str, elements) -> ET.Element:
    s = ET.Element("segment", xid=xid)
    for tag, text in (("name", name), ("usage", usage), ("pos", pos), ("max_use", "1")):
        ET.SubElement(s, tag).text = text
    s.extend(elements)
    return s


def _dmg(usage: str) -> ET.Element:
    els = [
        _el("DMG01", "1250", "Date Time Period Format Qualifier", "R", "01", ["D8"]),
        _el("DMG02", "1251", "Birth Date", "R", "02"),
        _el("DMG03", "1068", "Gender Code", "R", "03", ["F", "M", "U"]),
    ]
    return _segment("DMG", "Demographic Information", usage, "0400", els)


def _amt() -> ET.Element:
    els = [
        _el("AMT01", "522", "Amount Qualifier Code", "R", "01", ["T3"]),
        _el("AMT02", "782", "Total Claim Charge Amount", "R", "02"),
    ]
    return _segment("AMT", "Claim Submitted Charges", "S", "1100", els)


def _set_codes(seg: ET.Element, xid: str, codes) -> None:
    el = seg.find(f"element[@xid='{xid}']")
    vc = el.find("valid_codes")
    if vc is None:
        vc = ET.SubElement(el, "valid_codes")
    for c in list(vc):
        vc.remove(c)
    for c in codes:
        ET.SubElement(vc, "code").text = c


def _set_text(node: ET.Element, tag: str, text: str) -> None:
    node.find(tag).text = text


def _loop(root: ET.Element, xid: str) -> ET.Element:
    return copy.deepcopy(root.find(f".//loop[@xid='{xid}']"))


def _strip_child_loops(loop: ET.Element) -> ET.Element:
    for child in [c for c in loop if c.tag == "loop"]:
        loop.remove(child)
    return loop


def _build_277(x212: ET.Element, x214: ET.ElementTree) -> ET.ElementTree:
    tree = copy.deepcopy(x214)
    root = tree.getroot()
    root.set("xid", "277A1")
    _set_text(root, "name", "HIPAA Health Care Claim Status Response 005010X212 (test map)")
    _set_codes(root.find(".//segment[@xid='GS']"), "GS08", ["005010X212"])
    _set_codes(root.find(".//segment[@xid='ST']"), "ST03", ["005010X212"])
    header = root.find(".//loop[@xid='HEADER']")
    header.remove(header.find("segment[@xid='BHT']"))
    header.append(copy.deepcopy(x212.find(".//segment[@xid='BHT']")))
    # nest the HL levels: 2000A > 2000B > 2000C > 2000D > 2000E, each after its own loops
    levels = {}
    for a, b, c in (
        ("2000A", "2100A", None),
        ("2000B", "2100B", "2200B"),
        ("2000C", "2100C", "2200C"),
        ("2000D", "2100D", "2200D"),
        ("2000E", "2100E", "2200E"),
    ):
        lvl = _strip_child_loops(_loop(x212, a))
        lvl.append(_loop(x212, b))
        if c:
            lvl.append(_loop(x212, c))
        levels[a] = lvl
    order = ["2000A", "2000B", "2000C", "2000D", "2000E"]
    for parent, child in zip(order, order[1:], strict=False):
        _set_text(levels[child], "pos", "2000")
        _set_text(levels[child], "usage", "R" if child != "2000E" else "S")
        levels[parent].append(levels[child])
    _set_text(levels["2000D"], "usage", "S")
    detail = root.find(".//loop[@xid='DETAIL']")
    for c in [c for c in detail if c.tag == "loop"]:
        detail.remove(c)
    detail.append(levels["2000A"])
    return tree


def _build_276(tree277: ET.ElementTree) -> ET.ElementTree:
    tree = copy.deepcopy(tree277)
    root = tree.getroot()
    root.set("xid", "276A1")
    _set_text(root, "name", "HIPAA Health Care Claim Status Request 005010X212 (test map)")
    _set_codes(root.find(".//segment[@xid='GS']"), "GS01", ["HR"])
    _set_codes(root.find(".//segment[@xid='ST']"), "ST01", ["276"])
    bht = root.find(".//segment[@xid='BHT']")
    _set_codes(bht, "BHT02", ["13"])
    bht.remove(bht.find("element[@xid='BHT06']"))
    nm1_pr = root.find(".//loop[@xid='2100A']")
    nm1_pr.remove(nm1_pr.find("segment[@xid='PER']"))
    for xid in ("2200B", "2200C"):
        parent = root.find(f".//loop[@xid='{xid}']/..")
        parent.remove(parent.find(f"loop[@xid='{xid}']"))
    for lvl, usage in (("2000D", "S"), ("2000E", "R")):
        loop = root.find(f".//loop[@xid='{lvl}']")
        hl_index = list(loop).index(loop.find("segment[@xid='HL']"))
        loop.insert(hl_index + 1, _dmg(usage))
    for xid in ("2200D", "2200E"):
        claim = root.find(f".//loop[@xid='{xid}']")
        _set_codes(claim.find("segment[@xid='TRN']"), "TRN01", ["1"])
        claim.remove(claim.find("segment[@xid='STC']"))
        for ref in claim.findall("segment[@xid='REF']"):
            _set_text(ref, "pos", "1000")
        dtp_index = list(claim).index(claim.find("segment[@xid='DTP']"))
        claim.insert(dtp_index, _amt())
        line = claim.find("loop")
        line.remove(line.find("segment[@xid='STC']"))
    return tree


@pytest.fixture(scope="session")
def x212_map_path(tmp_path_factory) -> str:
    """A pyx12 map directory that knows 276 and 277 in 005010X212."""
    target = tmp_path_factory.mktemp("pyx12_maps")
    shutil.copytree(PYX12_MAPS, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py*"))
    x212 = ET.parse(PYX12_MAPS / "277.5010.X212.xml").getroot()
    t277 = _build_277(x212, ET.parse(PYX12_MAPS / "277.5010.X214.xml"))
    t277.write(target / "277.5010.X212.xml", encoding="utf-8", xml_declaration=True)
    _build_276(t277).write(target / "276.5010.X212.xml", encoding="utf-8", xml_declaration=True)
    maps = (target / "maps.xml").read_text(encoding="utf-8")
    anchor = '<map vriic="005010X214" fic="HN" abbr="277">277.5010.X214.xml</map>'
    assert anchor in maps
    maps = maps.replace(
        anchor,
        anchor
        + '\n    <map vriic="005010X212" fic="HN" abbr="277A1">277.5010.X212.xml</map>'
        + '\n    <map vriic="005010X212" fic="HR" abbr="276A1">276.5010.X212.xml</map>',
    )
    (target / "maps.xml").write_text(maps, encoding="utf-8")
    return str(target)


@pytest.fixture(scope="session")
def pyx12_validate(x212_map_path):
    """Validate X12 text with pyx12; returns (ok, error lines)."""
    import pyx12.params
    import pyx12.x12n_document

    def validate(text: str, tmp_path: Path) -> tuple[bool, str]:
        src = tmp_path / "under_test.x12"
        src.write_text(text, encoding="ascii")
        html = io.StringIO()
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(),
            src_file=str(src),
            fd_997=None,
            fd_html=html,
            fd_xmldoc=None,
            xslt_files=None,
            map_path=x212_map_path,
        )
        errors = [ln for ln in html.getvalue().splitlines() if "Error Code" in ln]
        return ok, "\n".join(errors)

    return validate
