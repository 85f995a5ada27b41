"""What the running service holds: settings, database, champions, audit writer, token cache.

Contract: :class:`ServiceState` is built once in the app's lifespan
(:func:`open_state`) and closed at shutdown (:meth:`ServiceState.close`). Routes
reach it through :mod:`serving.api.deps` (or :mod:`serving.api.front_door`), never
through globals. :class:`TokenCache` maps a token's SHA-256 to its principal
for ``ttl`` seconds; revoking tokens in this process (:func:`serving.auth.revoke_tokens`)
empties every cache at once, and a revocation by another process (the CLI)
takes effect within ``ttl``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from features.store import make_engine
from serving.api.readers import StoredReader
from serving.audit import AuditWriter
from serving.auth import Principal, hash_token, on_revoke, resolve_token
from serving.champions import ChampionSet, Loader, registry_loader
from serving.db import bound_lock_waits, migrate
from serving.settings import ServingSettings


@dataclass
class TokenCache:
    """Resolved tokens for a few seconds (a revoked token stops within ``ttl``)."""

    engine: Engine
    ttl: float
    _seen: dict[str, tuple[Principal | None, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        on_revoke(self.clear)

    def resolve(self, token: str) -> Principal | None:
        key = hash_token(token)
        hit = self._seen.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.engine.connect() as conn:
            who = resolve_token(conn, token)
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = (who, now + self.ttl)
        return who

    def clear(self) -> None:
        self._seen.clear()


@dataclass
class ServiceState:
    settings: ServingSettings
    engine: Engine
    champions: ChampionSet
    audit: AuditWriter
    tokens: TokenCache
    reader: StoredReader

    def close(self) -> None:
        self.audit.close()
        self.reader.close()
        self.engine.dispose()


def open_state(settings: ServingSettings, loader: Loader | None = None) -> ServiceState:
    """Connect, migrate, load the champions and start the audit writer."""
    engine = make_engine(settings.db_url)
    bound_lock_waits(engine, settings.db_busy_seconds)
    migrate(engine)
    champions = ChampionSet(loader or registry_loader(settings.tracking_uri))
    champions.reload()
    if settings.require_models and not champions.ready:
        raise RuntimeError(f"champion models missing: {champions.current.errors}")
    return ServiceState(
        settings=settings,
        engine=engine,
        champions=champions,
        audit=AuditWriter(engine),
        tokens=TokenCache(engine, settings.auth_cache_seconds),
        reader=StoredReader(engine),
    )
