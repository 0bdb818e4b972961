"""The environment is read only by settings modules (issue 16): each setting has one home.

The code checks read the source (an AST walk), so a new ``os.environ`` or a settings class
written into a handler, an API or shared plumbing fails here with the file and line.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from shared.service import ServiceIdentity
from shared.settings import RuntimeSettings, ServiceIdentitySettings, ServiceSettings

ROOT = Path(__file__).resolve().parents[3]
# Still defined outside a settings module; each entry names where it should go and why it has not.
NOT_YET_MOVED = {
    # services/intake/limits.py is being edited by another change: IntakeLimits (RCM_INTAKE_MAX_*)
    # belongs in services/intake/settings.py.
    ("services/intake/limits.py", "IntakeLimits"),
}


# Reads of one setting without pydantic-settings (0.2 s to load, with asyncio and ssl), for
# short commands; each mirrors its settings field and a test below holds the two equal.
MIRRORS = {
    ("shared/home.py", "environ"): "RuntimeSettings.home (RCM_HOME), for `rcm code`",
}


def _settings_module(path: Path) -> bool:
    return path.name == "settings.py"


def _environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [(node.lineno, a.name) for a in node.names if a.name in ("environ", "getenv")]
        elif isinstance(node, ast.ClassDef):
            bases = {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
            if "BaseSettings" in bases:
                found.append((node.lineno, node.name))
    return found


def _sources():
    for top in ("shared", "services"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if not _settings_module(path):
                yield path


def test_only_settings_modules_read_the_environment():
    stray = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for line, what in _environment_reads(ast.parse(path.read_text(), rel)):
            if (rel, what) not in NOT_YET_MOVED and (rel, what) not in MIRRORS:
                stray.append(f"{rel}:{line} {what}")
    assert stray == []


def test_the_check_finds_a_stray_read():
    code = (
        "import os\nfrom os import getenv\nfrom pydantic_settings import BaseSettings\n"
        "x = os.environ.get('RCM_X')\nclass Loose(BaseSettings):\n    pass\n"
    )
    assert sorted(w for _, w in _environment_reads(ast.parse(code))) == [
        "Loose",
        "environ",
        "getenv",
    ]


@pytest.mark.parametrize(
    ("value", "profiled", "not_profiled"),
    [
        ("coding,billing", ["coding", "billing"], ["payments", ""]),
        (None, [], ["coding", "billing"]),
    ],
)
def test_profiled_services_come_from_the_runtime_settings(
    monkeypatch, value, profiled, not_profiled
):
    if value is None:
        monkeypatch.delenv("RCM_PROFILE_SERVICES", raising=False)
    else:
        monkeypatch.setenv("RCM_PROFILE_SERVICES", value)
    runtime = ServiceSettings().runtime
    assert [s for s in profiled if runtime.profiles(s)] == profiled
    assert [s for s in not_profiled if runtime.profiles(s)] == []
    assert RuntimeSettings(profile_services="followup").profiles("followup")


def test_service_identity_reads_its_credentials_from_shared_settings(monkeypatch, tmp_path):
    token = tmp_path / "token"
    token.write_text("abc.def.ghi\n")
    monkeypatch.setenv("RCM_SERVICE_TOKEN_FILE", str(token))
    monkeypatch.setenv("RCM_SERVICE_SCOPE", "rcm.service")
    assert ServiceIdentitySettings().token_file == token
    settings = ServiceSettings(service_name="followup")
    identity = ServiceIdentity.build(settings)
    assert identity.subject == "service:followup"
    assert identity.credentials.token_file == token and identity.credentials.scope == "rcm.service"


@pytest.mark.parametrize(
    ("name", "value"), [(None, None), ("RCM_HOME", "/srv/rcm"), ("rcm_home", "rel/x")]
)
def test_the_light_rcm_home_reads_what_the_runtime_settings_read(monkeypatch, name, value):
    from shared.home import rcm_home

    for k in [k for k in os.environ if k.upper() == "RCM_HOME"]:
        monkeypatch.delenv(k)
    if name is not None:
        monkeypatch.setenv(name, value)
    assert rcm_home() == RuntimeSettings().home
