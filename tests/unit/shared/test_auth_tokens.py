"""Bearer JWTs on the development key: what is accepted, and each way a token is refused."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from shared import auth
from shared.auth import Authenticator, LocalKeys, Principal, RevocationList, TokenError, dev_key
from shared.settings import AuthSettings, RuntimeSettings

ISSUER, AUDIENCE = "urn:rcm:development", "rcm"


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return dev_key(tmp_path_factory.mktemp("home"), "unit-secret")


@pytest.fixture
def authn(key):
    return Authenticator(LocalKeys(key), issuer=ISSUER, audience=AUDIENCE)


def claims(**over):
    now = int(time.time())
    out = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "coder-1",
        "iat": now,
        "exp": now + 600,
        "jti": "t-1",
        "roles": ["coder"],
        "sites": ["north-clinic"],
    }
    out.update(over)
    return {k: v for k, v in out.items() if v is not None}


def sign(key, body, **headers) -> str:
    return jwt.encode(body, key.private, algorithm="RS256", headers={"kid": key.kid, **headers})


def refusal(authn, token) -> str:
    with pytest.raises(TokenError) as e:
        authn.authenticate_local(token)
    return str(e.value)


def test_a_good_token_gives_its_principal(authn, key):
    p = authn.authenticate_local(sign(key, claims()))
    assert p == Principal("coder-1", "coder", frozenset({"north-clinic"}), "t-1")
    assert p.can_access("north-clinic") and not p.can_access("east-hospital")
    assert auth.sites_filter(p) == ["north-clinic"]


def test_an_all_site_identity_says_so_explicitly(authn, key):
    p = authn.authenticate_local(sign(key, claims(sites=["*"], roles=["auditor"])))
    assert p.all_sites and p.can_access("anywhere") and auth.sites_filter(p) is None
    assert "mixes" in refusal(authn, sign(key, claims(sites=["*", "north-clinic"])))
    assert "lacks the sites claim" in refusal(authn, sign(key, claims(sites=None)))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"iss": "https://elsewhere.example"}, "another issuer"),
        ({"aud": "other-api"}, "another audience"),
        ({"exp": int(time.time()) - 1}, "expired"),
        ({"exp": None}, "lacks the exp claim"),
        ({"iat": None}, "lacks the iat claim"),
        ({"sub": None}, "lacks the sub claim"),
        ({"sub": "  "}, "subject is empty"),
        ({"sub": 42}, "subject is not a string"),
        ({"jti": None}, "lacks the jti claim"),
        ({"iss": None}, "lacks the iss claim"),
        ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, "not valid yet"),
        ({"roles": "coder", "sites": [""]}, "not a list of names"),
    ],
)
def test_claims_that_are_refused(authn, key, change, reason):
    assert reason in refusal(authn, sign(key, claims(**change)))


def test_the_lifetime_cap_holds_whatever_exp_says(authn, key):
    long_ago = int(time.time()) - 13 * 3600
    token = sign(key, claims(iat=long_ago, exp=long_ago + 31 * 365 * 86400))
    assert "lifetime cap" in refusal(authn, token)
    young = sign(key, claims(iat=int(time.time()) - 3600, exp=int(time.time()) + 10**8))
    assert authn.authenticate_local(young).user_id == "coder-1"


def test_a_verified_token_is_remembered_until_it_expires(authn, key):
    token = sign(key, claims(exp=int(time.time()) + 1, jti="short"))
    assert authn.authenticate_local(token).jti == "short"
    assert authn.authenticate_local(token).jti == "short"  # remembered
    time.sleep(1.05)
    assert refusal(authn, token) == "token expired"


def test_a_token_signed_by_another_key_is_refused(authn, tmp_path, key):
    other = dev_key(tmp_path, "another-secret")
    assert "unknown key" in refusal(authn, sign(other, claims()))  # its own kid
    forged = sign(other, claims(), kid=key.kid)  # claiming ours
    assert "bad token signature" in refusal(authn, forged)


def test_alg_none_and_hs256_with_the_public_key_are_refused(authn, key):
    none = jwt.encode(claims(), None, algorithm="none", headers={"kid": key.kid})
    assert "algorithm not allowed" in refusal(authn, none)
    # Key confusion: HMAC keyed with the public key, which anyone can fetch.
    public_pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": key.kid, "typ": "JWT"}
    confused = _hand_signed(header, claims(), public_pem)
    assert "algorithm not allowed" in refusal(authn, confused)


def _hand_signed(header: dict, body: dict, secret: bytes) -> str:
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def test_an_allowed_algorithm_that_is_not_the_keys_is_refused(authn, key):
    other = ed25519.Ed25519PrivateKey.generate()
    token = jwt.encode(claims(), other, algorithm="EdDSA", headers={"kid": key.kid})
    assert "does not match its key" in refusal(authn, token)


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "e30.e30.", "x" * 5000])
def test_garbage_is_malformed_not_a_crash(authn, garbage):
    assert refusal(authn, garbage) in ("malformed token", "token algorithm not allowed")


def test_refusals_never_quote_the_token(authn, key):
    marker = "DOE^JOHN-19700102"
    for body in (claims(sub=marker, aud=marker), claims(iss=marker), claims(sites=[marker, "*"])):
        assert marker not in refusal(authn, sign(key, body))


def test_a_revoked_jti_is_refused_and_the_list_is_reread_when_it_changes(tmp_path, key):
    path = tmp_path / "revoked.txt"
    authn = Authenticator(
        LocalKeys(key),
        issuer=ISSUER,
        audience=AUDIENCE,
        revoked=RevocationList(path, check_every=0),
    )
    token = sign(key, claims(jti="stolen-1"))
    assert authn.authenticate_local(token).jti == "stolen-1"  # no file: nothing revoked
    path.write_text("# revoked 2026-05-01 by ops\nother\nstolen-1  # laptop lost\n")
    assert refusal(authn, token) == "token revoked"
    path.write_text("other\n")
    assert authn.authenticate_local(token).jti == "stolen-1"


def test_roles_and_sites_from_configured_claim_paths(key):
    authn = Authenticator(
        LocalKeys(key),
        issuer=ISSUER,
        audience=AUDIENCE,
        role_claim="realm_access.roles",
        site_claim="rcm_sites",
        jti_claim="uti",
    )
    body = claims(roles=None, sites=None, jti=None)
    body |= {
        "realm_access": {"roles": ["offline_access", "biller", "supervisor"]},
        "rcm_sites": "east-hospital",  # a single-valued attribute arrives as a string
        "uti": "u-7",
    }
    p = authn.authenticate_local(sign(key, body))
    assert (p.role, p.roles, p.sites, p.jti) == (
        "biller",
        frozenset({"biller", "supervisor"}),
        frozenset({"east-hospital"}),
        "u-7",
    )


def test_the_development_key_is_made_once_private_and_shared_by_racing_processes(tmp_path):
    kids: list[str] = []
    threads = [
        threading.Thread(target=lambda: kids.append(dev_key(tmp_path, "race").kid))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(kids)) == 1
    (pem,) = (tmp_path / "keys").glob("dev-token-*.pem")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "keys").iterdir()] == [pem.name]  # no temp files left
    assert dev_key(tmp_path, "race").kid == kids[0]
    assert dev_key(tmp_path, "another").kid != kids[0]


def test_issue_and_verify_keep_their_signatures_on_the_jwt_path(monkeypatch, tmp_path):
    monkeypatch.setenv("RCM_HOME", str(tmp_path))
    token = auth.issue("s3cret", "sup", "supervisor", ["*"], ttl_seconds=600)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"].startswith("dev-")
    body = jwt.decode(token, options={"verify_signature": False})
    assert body["iss"] == ISSUER and body["aud"] == AUDIENCE and body["jti"]
    assert body["exp"] - body["iat"] == 600
    assert auth.verify("s3cret", token).all_sites
    assert list((tmp_path / "keys").iterdir())


def test_a_signer_follows_the_configured_claim_names(monkeypatch, tmp_path):
    monkeypatch.setenv("RCM_HOME", str(tmp_path))
    monkeypatch.setenv("RCM_TOKEN_ROLE_CLAIM", "realm_access.roles")
    monkeypatch.setenv("RCM_TOKEN_ISSUER", "https://idp.example/realms/rcm")
    token = auth.issue("s3cret", "u", "ops", ["x"])
    assert jwt.decode(token, options={"verify_signature": False})["realm_access"] == {
        "roles": ["ops"]
    }
    assert auth.verify("s3cret", token).role == "ops"


def test_no_development_tokens_in_production(monkeypatch, tmp_path):
    monkeypatch.setenv("RCM_ENV", "production")
    with pytest.raises(auth.ConfigurationError, match="identity provider"):
        auth.DevSigner.build(AuthSettings(), RuntimeSettings(home=tmp_path))
    assert not os.path.exists(tmp_path / "keys")
