"""Web sign-in: access token in, session cookie out; CSRF tokens; form bodies.

Contract:

* :func:`sign_in` checks a user name and access token with
  :func:`serving.auth.resolve_token` (the token is looked up by its SHA-256,
  exactly like the API's bearer tokens) and, when both match, creates a
  **session**: a fresh random 256-bit id whose SHA-256 is stored in
  ``api_tokens`` (label ``web-session``, expiring after :data:`SESSION_HOURS`).
  The cookie (:data:`SESSION_COOKIE`) carries the id; it is HttpOnly,
  SameSite=Strict, Path=/, and Secure when the request came over HTTPS.
  Because the session is an ordinary stored token, revoking a user's tokens
  (``sunflower users revoke``) also ends their web sessions, and a server
  restart or a second process keeps them.
* :func:`sign_out` revokes the session row and forgets cached resolutions.
* :func:`csrf_token` derives the form token of a session (SHA-256 of a fixed
  prefix and the secret session id: a page script cannot read the HttpOnly
  cookie, and another site cannot compute it). Before sign-in, a random
  double-submit cookie (:data:`LOGIN_CSRF_COOKIE`) protects the sign-in form.
* :func:`read_form` parses an ``application/x-www-form-urlencoded`` body (no
  multipart: pages never upload files), capped at :data:`MAX_FORM_BYTES`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from urllib.parse import parse_qs

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response

from features.contract import local_now
from serving.auth import SESSION_LABEL, Principal, hash_token, resolve_token
from serving.db import api_tokens

SESSION_COOKIE = "sf_session"
LOGIN_CSRF_COOKIE = "sf_login_csrf"
SESSION_PREFIX = "sfw_"
SESSION_HOURS = 12
MAX_FORM_BYTES = 64 * 1024


class FormError(ValueError):
    """A form body that cannot be read (wrong type, too large, not UTF-8)."""


def _now() -> datetime:
    return local_now().replace(microsecond=0)


def sign_in(engine: Engine, username: str, token: str) -> tuple[str, Principal] | None:
    """(new session id, account) when ``token`` is a live token of ``username``, else None."""
    username, token = username.strip(), token.strip()
    if not username or not token or len(token) > 200:
        return None
    with engine.begin() as conn:
        who = resolve_token(conn, token)
        if who is None or not hmac.compare_digest(who.username, username):
            return None
        session = SESSION_PREFIX + secrets.token_urlsafe(32)
        conn.execute(
            api_tokens.insert().values(
                user_id=who.user_id,
                token_hash=hash_token(session),
                label=SESSION_LABEL,
                created_at=_now(),
                expires_at=_now() + timedelta(hours=SESSION_HOURS),
            )
        )
    return session, who


def sign_out(engine: Engine, session: str) -> None:
    """Revoke a session (idempotent; unknown ids are ignored)."""
    with engine.begin() as conn:
        conn.execute(
            api_tokens.update()
            .where(
                api_tokens.c.token_hash == hash_token(session),
                api_tokens.c.label == SESSION_LABEL,
                api_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=_now())
        )


def session_of(request: Request) -> str | None:
    """The session id a request carries (only our own prefix is accepted)."""
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and value.startswith(SESSION_PREFIX) and len(value) < 100 else None


def csrf_token(session: str) -> str:
    """The form token bound to a session."""
    return hashlib.sha256(b"sunflower-csrf\x00" + session.encode()).hexdigest()[:40]


def csrf_ok(expected: str | None, presented: str | None) -> bool:
    return bool(expected and presented) and hmac.compare_digest(str(expected), str(presented))


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, session: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_login_csrf_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


async def read_form(request: Request) -> dict[str, str]:
    """The first value of each field of a url-encoded form body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormError("expected a url-encoded form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError("form too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormError("form is not UTF-8") from exc
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def resolve_session(engine: Engine, session: str) -> Principal | None:
    """The account of a live session, straight from the database (no cache)."""
    with engine.connect() as conn:
        return resolve_token(conn, session, session=True)
