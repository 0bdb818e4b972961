"""The 005010X279A1 maps the eligibility tests validate with: copied as published, and the
one correction the helper makes (tests/fixtures/x12/pyx12_maps/README.md)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.unit.eligibility.pyx12_maps import MAP_271, MAPS, map_dir, pyx12_validate

PUBLISHED = {
    "270.5010.X279.A1.xml": "eedeeedc1abde8858802e98929acc8861c7c6761efe6ab84f4cafdd87bc73c82",
    "271.5010.X279.A1.xml": "b1fa43deac31e0b6e124f4115854eef0abc0abd25e8cfbbc71addc500be16d11",
}
REAL = MAPS.parent / "271"

# A 271 as the TR3 writes it: another payer, primary, named in a 2120 loop after its EB.
TR3_271 = (
    "ISA*00*          *00*          *ZZ*PAYER          *ZZ*RCM            *240301*0901*^*00501"
    "*000000009*0*P*:~GS*HB*PAYER*RCM*20240301*0901*9*X*005010X279A1~ST*271*0001*005010X279A1~"
    "BHT*0022*11*R1*20240301*0901~HL*1**20*1~NM1*PR*2*ACME*****PI*ACME01~HL*2*1*21*1~"
    "NM1*1P*2*CLINIC*****XX*1234567893~HL*3*2*22*0~TRN*2*T1*9RCM000000~"
    "NM1*IL*1*DOE*JANE****MI*W1~EB*1*IND*30~EB*R**30*MB~LS*2120~"
    "NM1*PRP*2*MEDICARE*****PI*00882~LE*2120~SE*15*0001~GE*1*9~IEA*1*000000009~"
)


def test_maps_are_the_published_copies():
    for name, digest in PUBLISHED.items():
        assert hashlib.sha256((MAPS / name).read_bytes()).hexdigest() == digest
    assert (MAPS / "LICENSE.txt").read_text().startswith("Copyright (c) 2001-2008 Kalamazoo")
    entries = (MAPS / "maps.xml").read_text()
    assert '<map vriic="005010X279A1" fic="HS" abbr="270">270.5010.X279.A1.xml</map>' in entries
    assert '<map vriic="005010X279A1" fic="HB" abbr="271">271.5010.X279.A1.xml</map>' in entries


def test_corrected_map_accepts_a_tr3_2120_loop_the_published_one_refuses(tmp_path: Path):
    ok, errors = pyx12_validate(TR3_271)
    assert (ok, errors) == (True, [])
    published = tmp_path / "maps"
    shutil.copytree(map_dir(), published)
    shutil.copy(MAPS / MAP_271, published / MAP_271)
    ok, errors = pyx12_validate(TR3_271, str(published))
    assert ok is False
    assert any("LS*2120 not found" in e["err_str"] for e in errors)


def test_real_270s_are_valid():
    for path in sorted(REAL.glob("*/*")):
        if path.suffix == ".270" or "request" in path.name:
            assert pyx12_validate(path.read_text()) == (True, []), path.name


def test_real_271s_fail_only_where_pyx12_cannot_read_repeated_elements():
    """pyx12 4.0.0 reads EB03 = 1^33^35 as one too-long code; every other error of the real
    271s is a defect of the file itself (SE02, the 4010 envelope)."""
    for path in sorted(REAL.glob("linuxforhealth/*.271")):
        ok, errors = pyx12_validate(path.read_text())
        other = [e for e in errors if "EB03" not in e["err_str"]]
        if "error" in path.name:
            assert [e["err_str"] for e in other] == ["SE id=4323 does not match ST id=4321"]
        else:
            assert ok is False and other == [], path.name
