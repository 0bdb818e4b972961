"""The Keycloak realm the tests and demo import agrees with the workbench and the services."""

from __future__ import annotations

import json
from pathlib import Path

from services.workbench.domain.demo_users import DEMO_PASSWORD, DEMO_USERS
from shared.auth import ROLES

REALM = Path(__file__).resolve().parents[3] / "deploy" / "keycloak" / "rcm-realm.json"


def test_realm_users_are_the_demo_users():
    realm = json.loads(REALM.read_text())
    people = [u for u in realm["users"] if "serviceAccountClientId" not in u]  # not rcm-followup
    users = {u["username"]: (u["realmRoles"], tuple(u["attributes"]["sites"])) for u in people}
    assert users == {u.username: ([u.role], u.sites) for u in DEMO_USERS}
    for u in people:
        assert u["credentials"] == [
            {"type": "password", "value": DEMO_PASSWORD, "temporary": False}
        ]
        assert (
            u["emailVerified"] and u["firstName"] and u["lastName"]
        )  # no profile page at first sign-in


def test_realm_roles_and_the_workbench_client():
    realm = json.loads(REALM.read_text())
    assert {r["name"] for r in realm["roles"]["realm"]} == set(ROLES)
    client = next(c for c in realm["clients"] if c["clientId"] == "rcm-workbench")
    assert client["clientId"] == "rcm-workbench" and client["publicClient"] is False
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["directAccessGrantsEnabled"] is False and client["implicitFlowEnabled"] is False
    mappers = {m["protocolMapper"]: m["config"] for m in client["protocolMappers"]}
    assert mappers["oidc-audience-mapper"]["included.custom.audience"].endswith(":rcm}")
    assert mappers["oidc-usermodel-realm-role-mapper"]["claim.name"] == "roles"
    assert mappers["oidc-usermodel-attribute-mapper"]["claim.name"] == "sites"
    # Loopback redirect URIs without a port: Keycloak accepts any port (RFC 8252), so the
    # tests' free ports need no realm per run.
    assert client["redirectUris"] == [
        "${RCM_KEYCLOAK_WORKBENCH_URL:http://127.0.0.1}/auth/callback"
    ]
