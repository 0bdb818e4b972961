"""Who may open which screen: one table, used for navigation and for every page's guard.

The services enforce the same roles and sites on every call; the workbench checks first so
a person never sees a screen of another role (403 page), and scopes what it shows to the
person's sites.
"""

from __future__ import annotations

from dataclasses import dataclass

CODER = "coder"
BILLER = "biller"
SUPERVISOR = "supervisor"
OPS = "ops"


@dataclass(frozen=True)
class Area:
    key: str
    label: str
    path: str
    roles: frozenset[str]


AREAS = (
    Area("coding", "Coding", "/coder", frozenset({CODER, SUPERVISOR})),
    Area("billing", "Billing", "/billing", frozenset({BILLER, SUPERVISOR})),
    Area("dashboard", "Dashboard", "/dashboard", frozenset({SUPERVISOR, OPS})),
)
BY_KEY = {a.key: a for a in AREAS}


def allowed(area: str, roles) -> bool:
    return bool(BY_KEY[area].roles & set(roles))


def navigation(roles) -> list[Area]:
    """The areas a person with ``roles`` sees in the menu, in menu order."""
    return [a for a in AREAS if a.roles & set(roles)]


def home_path(roles) -> str:
    """Where signing in lands: a supervisor's dashboard, else the first area the roles open,
    else the page that says none does."""
    if SUPERVISOR in roles:
        return BY_KEY["dashboard"].path
    nav = navigation(roles)
    return nav[0].path if nav else "/no-screens"


def safe_next(path: str | None) -> str:
    """A post-sign-in destination that stays on this site (an absolute or protocol-relative
    URL, or a backslash trick, becomes "/")."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    if any(ord(c) < 32 for c in path):
        return "/"
    return path
