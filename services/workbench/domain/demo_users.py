"""The demo users: the development sign-in page lists them, and the Keycloak realm that the
tests and `rcm demo` import (deploy/keycloak/rcm-realm.json) holds the same ones."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    role: str
    sites: tuple[str, ...]


DEMO_USERS = (
    DemoUser("coder-north", "Casey North", "coder", ("north-clinic",)),
    DemoUser("coder-south", "Sam South", "coder", ("south-urgent-care",)),
    DemoUser("biller-north", "Blair North", "biller", ("north-clinic",)),
    DemoUser("biller-all", "Bo Allsites", "biller", ("*",)),
    DemoUser("supervisor-all", "Sky Supervisor", "supervisor", ("*",)),
    DemoUser("ops-all", "Oak Ops", "ops", ("*",)),
)
BY_USERNAME = {u.username: u for u in DEMO_USERS}
DEMO_PASSWORD = "rcm-demo"  # the Keycloak realm's development password for every demo user
