"""`rcm token`: development tokens only, sites always named, lifetime capped."""

from __future__ import annotations

import jwt
import pytest

from rcm.cli.main import main
from shared import auth


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("RCM_HOME", str(tmp_path))
    for name in ("RCM_ENV", "RCM_TOKEN_ISSUER", "RCM_TOKEN_MAX_LIFETIME_SECONDS"):
        monkeypatch.delenv(name, raising=False)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["token", *argv])
    out = capsys.readouterr()
    return code, out.out.strip(), out.err.strip()


def test_it_prints_a_token_the_services_accept(capsys):
    code, token, err = run(capsys, "--user", "coder-1", "--sites", "north-clinic", "--ttl", "600")
    assert code == 0
    p = auth.verify(auth.AuthSettings().token_secret, token)
    assert (p.user_id, p.role, p.sites) == ("coder-1", "coder", frozenset({"north-clinic"}))
    body = jwt.decode(token, options={"verify_signature": False})
    assert body["exp"] - body["iat"] == 600 and body["jti"] in err


def test_sites_must_be_named(capsys):
    with pytest.raises(SystemExit) as e:
        main(["token", "--user", "coder-1"])
    assert e.value.code == 2 and "--sites" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--ttl", "43201"], "lifetime cap"),
        (["--ttl", "0"], "lifetime cap"),
        (["--sites", "*", "north-clinic"], "stands alone"),
        (["--role", "service"], "service:<name>"),
    ],
)
def test_it_refuses(capsys, argv, says):
    base = {"--user": "u", "--sites": ["north-clinic"]}
    args: list[str] = []
    given = set(argv)
    for flag, value in base.items():
        if flag not in given:
            args += [flag, *(value if isinstance(value, list) else [value])]
    code, out, err = run(capsys, *args, *argv)
    assert code == 2 and not out and says in err


def test_a_service_identity_gets_its_role(capsys):
    code, token, _ = run(capsys, "--user", "service:followup", "--role", "service", "--sites", "*")
    assert code == 0 and auth.verify(auth.AuthSettings().token_secret, token).all_sites
    code, token, _ = run(
        capsys, "--user", "service:ehr-feed", "--role", "integration", "--sites", "x"
    )
    assert code == 0 and auth.verify(auth.AuthSettings().token_secret, token).role == "integration"


def test_it_refuses_to_run_in_production(capsys, monkeypatch):
    monkeypatch.setenv("RCM_ENV", "production")
    code, out, err = run(capsys, "--user", "u", "--sites", "north-clinic")
    assert code == 2 and not out and "development tokens only" in err
