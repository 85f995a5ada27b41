"""Accounts, bearer tokens and who may see which person.

Contract: :func:`add_user` creates an account with a role and a scope;
:func:`issue_token` returns a new random token **once** and stores only its
SHA-256 (tokens are 256-bit random, so a slow password hash buys nothing);
:func:`resolve_token` turns a presented token into a :class:`Principal` or
``None`` (unknown, revoked, expired, or inactive account).

Roles (:data:`ROLES`): ``worker`` sees the persons whose ``worker_id`` is
theirs; ``supervisor`` the persons of their district, or of one town in it;
``model_owner`` model information and aggregates, no person-level reads;
``integrator`` sends data (ingest, ad-hoc scoring), no person-level reads;
``admin`` everything, including the audit log. :meth:`Principal.scope_filter`
is the one place that turns a scope into SQL, so lists and person reads apply
the same rule, and an out-of-scope person looks exactly like a missing one.
"""

from __future__ import annotations

import hashlib
import secrets
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.contract import local_now
from serving.db import api_tokens, users

Role = Literal["worker", "supervisor", "model_owner", "integrator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
# The role table: which roles may use which kind of operation. The routes
# (serving.api.deps), the front door and the pages read these; nothing restates them.
#: Roles that may read person-level data (within their scope).
PERSON_READERS: tuple[Role, ...] = ("worker", "supervisor", "admin")
#: Roles that may read aggregates (KPIs, model health, runs).
AGGREGATE_READERS: tuple[Role, ...] = ("supervisor", "model_owner", "admin")
#: Roles that may send persons and events.
DATA_SENDERS: tuple[Role, ...] = ("integrator", "admin")
#: Roles that may score supplied features or histories (ad-hoc scoring).
SCORERS: tuple[Role, ...] = ("integrator", "model_owner", "admin")
#: Roles that may administer accounts, reload models and read the audit log.
ADMINS: tuple[Role, ...] = ("admin",)
TOKEN_PREFIX = "sf_"
#: The label of a web session's row in ``api_tokens``: a session signs in the pages
#: only, it is never accepted as an API bearer token.
SESSION_LABEL = "web-session"
#: A bearer token lives 1..TOKEN_DAYS_MAX days; TOKEN_DAYS_DEFAULT when not given.
TOKEN_DAYS_DEFAULT = 90
TOKEN_DAYS_MAX = 365


@dataclass(frozen=True)
class Principal:
    """An authenticated account and its scope."""

    user_id: int
    username: str
    role: Role
    worker_id: str | None = None
    district: str | None = None
    town: str | None = None

    @property
    def reads_persons(self) -> bool:
        return self.role in PERSON_READERS

    def scope_eqs(self) -> tuple[tuple[str, str], ...] | None:
        """The scope rule, once: column = value pairs a person row must match.

        ``()`` sees every person (admin); ``None`` sees none (a role without
        person reads, or an account missing its worker_id/district).
        :meth:`scope_filter` renders it to SQLAlchemy, :meth:`sees` checks one
        row, and the front door's SQL (``serving.api.readers``) uses the pairs as they are.
        """
        if self.role == "admin":
            return ()
        if self.role == "worker":
            return (("worker_id", self.worker_id),) if self.worker_id else None
        if self.role == "supervisor" and self.district:
            eqs = (("district", self.district),)
            return (*eqs, ("town", self.town)) if self.town else eqs
        return None

    def scope_filter(self, table: sa.Table) -> sa.ColumnElement[bool]:
        """:meth:`scope_eqs` as a SQL condition on a table with those columns."""
        eqs = self.scope_eqs()
        if eqs is None:
            return sa.false()
        return sa.and_(sa.true(), *(table.c[col] == value for col, value in eqs))

    def sees(self, worker_id: str, district: str, town: str) -> bool:
        """:meth:`scope_eqs` for one row already in hand."""
        eqs = self.scope_eqs()
        row = {"worker_id": worker_id, "district": district, "town": town}
        return eqs is not None and all(row[col] == value for col, value in eqs)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return local_now().replace(microsecond=0)


def add_user(
    engine: Engine,
    username: str,
    role: str,
    *,
    worker_id: str | None = None,
    district: str | None = None,
    town: str | None = None,
) -> int:
    """Create an account; returns its id. Raises ValueError on a bad role or scope."""
    if role not in ROLES:
        raise ValueError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if role == "worker" and not worker_id:
        raise ValueError("a worker account needs --worker-id (the persons' worker_id)")
    if role == "supervisor" and not district:
        raise ValueError("a supervisor account needs --district (and optionally --town)")
    if town and not district:
        raise ValueError("--town needs --district (town names repeat across districts)")
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
            raise ValueError(f"user {username!r} already exists")
        return int(
            conn.execute(
                users.insert()
                .values(
                    username=username,
                    role=role,
                    worker_id=worker_id,
                    district=district,
                    town=town,
                    active=True,
                    created_at=_now(),
                )
                .returning(users.c.id)
            ).scalar_one()
        )


def user_id_of(conn: Connection, username: str) -> int:
    found = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
    if found is None:
        raise ValueError(f"no user {username!r}; create it with `sunflower users add`")
    return int(found)


def issue_token(
    engine: Engine, username: str, *, label: str | None = None, days: int | None = None
) -> str:
    """A new bearer token for ``username`` (shown once; only its hash is stored).

    It expires after ``days`` (1..:data:`TOKEN_DAYS_MAX`, default
    :data:`TOKEN_DAYS_DEFAULT`); anything else is a ValueError.
    """
    days = TOKEN_DAYS_DEFAULT if days is None else days
    if not 1 <= days <= TOKEN_DAYS_MAX:
        raise ValueError(f"days must be between 1 and {TOKEN_DAYS_MAX} (got {days})")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            api_tokens.insert().values(
                user_id=user_id_of(conn, username),
                token_hash=hash_token(token),
                label=label,
                created_at=_now(),
                expires_at=_now() + timedelta(days=days),
            )
        )
    return token


_methods: list[weakref.WeakMethod[Callable[[], None]]] = []


def on_revoke(clear: Callable[[], None]) -> None:
    """Call ``clear`` (a bound method, held weakly) whenever this process revokes tokens."""
    _methods.append(weakref.WeakMethod(clear))


def forget_cached_tokens() -> None:
    """Empty every in-process token cache (after a revocation)."""
    alive = []
    for ref in _methods:
        fn = ref()
        if fn is not None:
            fn()
            alive.append(ref)
    _methods[:] = alive


def revoke_tokens(engine: Engine, username: str) -> int:
    """Revoke every live token of ``username``; returns how many."""
    with engine.begin() as conn:
        uid = user_id_of(conn, username)
        result = conn.execute(
            api_tokens.update()
            .where(api_tokens.c.user_id == uid, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
    forget_cached_tokens()
    return int(result.rowcount)


def list_users(engine: Engine) -> list[dict[str, object]]:
    """Accounts (never tokens) for the CLI and the admin API."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.username)).mappings().all()
    return [dict(r) for r in rows]


def resolve_token(conn: Connection, token: str, *, session: bool = False) -> Principal | None:
    """The principal a bearer token stands for, or None when it does not (any reason).

    A web session (label :data:`SESSION_LABEL`) is not a bearer token, and a bearer
    token is not a session: ``session`` says which of the two ``token`` must be.
    """
    label = api_tokens.c.label
    kind = label == SESSION_LABEL if session else sa.or_(label.is_(None), label != SESSION_LABEL)
    row = conn.execute(
        sa.select(
            users.c.id,
            users.c.username,
            users.c.role,
            users.c.worker_id,
            users.c.district,
            users.c.town,
            api_tokens.c.expires_at,
            api_tokens.c.created_at,
        )
        .select_from(api_tokens.join(users, users.c.id == api_tokens.c.user_id))
        .where(
            api_tokens.c.token_hash == hash_token(token),
            api_tokens.c.revoked_at.is_(None),
            kind,
            users.c.active.is_(True),
        )
    ).first()
    if row is None:
        return None
    # a token issued before expiry was required (no expires_at) ends after the default
    expires = row.expires_at or row.created_at + timedelta(days=TOKEN_DAYS_DEFAULT)
    if expires <= local_now():
        return None
    return Principal(row.id, row.username, row.role, row.worker_id, row.district, row.town)
