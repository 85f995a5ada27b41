"""Tokens issued before expiry was required (no ``expires_at``) end after the default.

Issue 15: expiry must be positive and bounded. Rows written by an older version
have ``expires_at`` NULL; they are honoured for ``TOKEN_DAYS_DEFAULT`` days
from their creation, then refused like any expired token.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from features.contract import local_now
from serving.auth import TOKEN_DAYS_DEFAULT, hash_token, issue_token, resolve_token
from serving.db import api_tokens


def test_a_token_without_expiry_ends_after_the_default_from_its_creation(fresh) -> None:
    token = issue_token(fresh.engine, "w1")
    for age_days, accepted in ((1, True), (TOKEN_DAYS_DEFAULT + 1, False)):
        with fresh.engine.begin() as conn:
            conn.execute(
                sa.update(api_tokens)
                .where(api_tokens.c.token_hash == hash_token(token))
                .values(expires_at=None, created_at=local_now() - timedelta(days=age_days))
            )
            assert (resolve_token(conn, token) is not None) is accepted, age_days
