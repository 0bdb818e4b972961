"""A running service verifies bearer JWTs on the development key: forged, expired, unsigned and
wrong-role tokens are refused; the caller's own token is taken."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from shared.auth import dev_key
from shared.settings import RuntimeSettings

pytestmark = pytest.mark.integration


def _claims(**over) -> dict:
    now = int(time.time())
    out = {
        "iss": "urn:rcm:development",
        "aud": "rcm",
        "sub": "coder-probe",
        "iat": now,
        "exp": now + 300,
        "jti": f"probe-{now}",
        "roles": ["coder"],
        "sites": ["north-clinic"],
    }
    return {**out, **over}


def test_the_coder_queue_takes_only_valid_tokens_of_an_allowed_role(pipeline, tmp_path):
    url = pipeline.coding_url + "/work/depth"
    key = dev_key(RuntimeSettings().home, pipeline.settings.auth.token_secret)
    stranger = dev_key(tmp_path, "someone else's key")

    def status(token: str | None) -> int:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.get(url, headers=headers, timeout=30).status_code

    def signed(k, **over) -> str:
        return jwt.encode(_claims(**over), k.private, algorithm="RS256", headers={"kid": k.kid})

    assert status(None) == 401
    assert status("not-a-token") == 401
    assert status(signed(stranger)) == 401  # unknown key
    forged = jwt.encode(_claims(), stranger.private, algorithm="RS256", headers={"kid": key.kid})
    assert status(forged) == 401  # our kid, not our signature
    assert status(jwt.encode(_claims(), None, algorithm="none")) == 401
    assert status(signed(key, exp=int(time.time()) - 5)) == 401
    assert status(signed(key, iat=int(time.time()) - 13 * 3600, exp=int(time.time()) + 3600)) == 401
    assert status(signed(key, sub="")) == 401
    assert status(signed(key, aud="another-api")) == 401
    assert status(signed(key, roles=["biller"])) == 403
    assert status(signed(key)) == 200
    assert status(pipeline.token()) == 200  # the fixture's issue(secret, ...) path
