"""pyx12 with the 005010X279A1 maps: the wheel's map directory plus the 270/271 maps kept
in tests/fixtures/x12/pyx12_maps (see its README for where they come from and the one
correction made here)."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12"
MAPS = FIXTURES / "pyx12_maps"
MAP_271 = "271.5010.X279.A1.xml"


@cache
def map_dir() -> str:
    """A directory with every map the wheel has, the 270/271 maps and their maps.xml."""
    import pyx12

    out = Path(tempfile.mkdtemp(prefix="rcm-pyx12-maps-"))
    for f in (Path(pyx12.__file__).parent / "map").glob("*.xml"):
        shutil.copy(f, out / f.name)
    for f in MAPS.glob("*.xml"):
        shutil.copy(f, out / f.name)
    _correct_2120(MAPS / MAP_271, out / MAP_271)
    return str(out)


def _correct_2120(src: Path, dst: Path) -> None:
    """Move LS, loop 2120C/D and LE out of loop 2115C/D into 2110C/D, as the TR3 has them.

    The published map nests them in 2115 with a loop position that sorts before 2115's III,
    so pyx12 can enter neither 2115 nor 2120 (README).
    """
    tree = ET.parse(src)
    for benefit in tree.getroot().iter("loop"):
        if benefit.get("xid") not in ("2110C", "2110D"):
            continue
        for inner in list(benefit):
            if inner.tag != "loop" or not inner.get("xid", "").startswith("2115"):
                continue
            for child in [c for c in inner if c.tag in ("segment", "loop")]:
                if child.get("xid") == "III":
                    continue
                inner.remove(child)
                if child.tag == "loop":
                    pos = child.find("pos")
                    assert pos is not None
                    pos.text = "3400"  # its NM1's position, after 2115's III (2600)
                benefit.append(child)
    tree.write(dst, encoding="utf-8", xml_declaration=True)


def pyx12_validate(text: str, map_path: str | None = None) -> tuple[bool, list]:
    """pyx12's verdict on ``text`` and its errors (with ``map_dir()`` unless told)."""
    import pyx12.error_handler  # noqa: F401  (imported for its side effects on pyx12)
    import pyx12.params
    import pyx12.x12n_document

    out = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(),
        src_file=io.StringIO(text),
        fd_997=None,
        fd_html=None,
        fd_xmldoc=None,
        fd_json=out,
        xslt_files=None,
        map_path=map_path or map_dir(),
    )
    errors: list = []

    def collect(node):
        if isinstance(node, dict):
            errors.extend(node.get("errors", []))
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(json.loads(out.getvalue() or "{}"))
    return ok, errors
