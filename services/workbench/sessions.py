"""Server-side sessions: the browser holds a random id in a cookie, the tokens stay here.

Two kinds of record share one store: a sign-in transaction (``login``: the OIDC state,
nonce and PKCE verifier, or the dev page's CSRF token, for the ten minutes a sign-in may
take) and a signed-in session (``user``: who, roles, sites, the tokens, the CSRF token).
Only the SHA-256 of an id is stored. Ids are 256-bit random; a new one is issued at
sign-in (no fixation), and sign-out deletes the record.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

SCHEMA = "workbench"
LOGIN_SECONDS = 600


def new_id() -> str:
    return secrets.token_urlsafe(32)


def id_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class LoginTransaction:
    csrf: str
    next_path: str = "/"
    state: str | None = None  # OIDC only
    nonce: str | None = None
    code_verifier: str | None = None
    redirect_uri: str | None = None


@dataclass
class Session:
    user_id: str  # the token's sub: what the services see
    name: str  # shown on screen (preferred_username, else sub)
    roles: list[str]
    sites: list[str]
    access_token: str
    access_expires_at: float
    csrf: str
    kind: str  # "oidc" or "dev"
    created_at: float = field(default_factory=time.time)
    last_seen_at: float = field(default_factory=time.time)
    refresh_token: str | None = None
    refresh_expires_at: float | None = None
    id_token: str | None = None

    @property
    def all_sites(self) -> bool:
        return "*" in self.sites


class SessionStore(Protocol):
    async def put(self, raw_id: str, kind: str, data: dict, expires_at: float) -> None: ...
    async def get(self, raw_id: str, kind: str) -> dict | None: ...
    async def delete(self, raw_id: str) -> None: ...
    async def prune(self) -> int: ...


class PostgresSessions:
    """Sessions in the workbench schema: every instance sees them; survives restarts."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def put(self, raw_id: str, kind: str, data: dict, expires_at: float) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                f"INSERT INTO {SCHEMA}.session (id_hash, kind, data, expires_at)"
                " VALUES ($1, $2, $3, to_timestamp($4)) ON CONFLICT (id_hash) DO UPDATE"
                " SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at",
                id_hash(raw_id),
                kind,
                json.dumps(data),
                expires_at,
            )

    async def get(self, raw_id: str, kind: str) -> dict | None:
        async with self.pool.acquire() as conn:
            data = await conn.fetchval(
                f"SELECT data FROM {SCHEMA}.session"
                " WHERE id_hash = $1 AND kind = $2 AND expires_at > now()",
                id_hash(raw_id),
                kind,
            )
        return None if data is None else json.loads(data)

    async def delete(self, raw_id: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(f"DELETE FROM {SCHEMA}.session WHERE id_hash = $1", id_hash(raw_id))

    async def prune(self) -> int:
        async with self.pool.acquire() as conn:
            done = await conn.execute(f"DELETE FROM {SCHEMA}.session WHERE expires_at < now()")
        return int(done.split()[-1])


class MemorySessions:
    """Sessions in this process only (one instance; lost on restart), at most ``limit`` of them."""

    def __init__(self, limit: int = 10_000):
        self.limit = limit
        self._rows: OrderedDict[str, tuple[str, dict, float]] = OrderedDict()

    async def put(self, raw_id: str, kind: str, data: dict, expires_at: float) -> None:
        key = id_hash(raw_id)
        self._rows[key] = (kind, json.loads(json.dumps(data)), expires_at)
        self._rows.move_to_end(key)
        while len(self._rows) > self.limit:
            self._rows.popitem(last=False)

    async def get(self, raw_id: str, kind: str) -> dict | None:
        row = self._rows.get(id_hash(raw_id))
        if row is None or row[0] != kind or row[2] <= time.time():
            return None
        return json.loads(json.dumps(row[1]))

    async def delete(self, raw_id: str) -> None:
        self._rows.pop(id_hash(raw_id), None)

    async def prune(self) -> int:
        now = time.time()
        stale = [k for k, (_, _, exp) in self._rows.items() if exp <= now]
        for k in stale:
            del self._rows[k]
        return len(stale)
