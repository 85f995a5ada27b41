"""Logs without identifiers: what the service writes to its logs names no person.

Contract: :func:`install` puts one :class:`Redact` filter on every logger the
service's records are created on (ours, uvicorn's, SQLAlchemy's, the model
modules'); it is idempotent. The filter rewrites a record before any handler
sees it:

* the message: URL path segments after ``persons``, ``people``, ``workers``,
  ``caseload``, ``districts`` and ``towns`` become ``…``, query strings become ``?…``, SQLAlchemy's
  ``[parameters: …]`` blocks are dropped (the engines also use
  ``hide_parameters``);
* an exception: the traceback keeps its frames (file, line, code) and each
  exception's *type*, but never its message — a driver's message carries bound
  values (a worker's note), a ``KeyError`` carries the key (a person id).

What is withheld is still in the audit log and the database; the log says where
the failure happened, not whom it concerned.
"""

from __future__ import annotations

import logging
import re
import traceback

#: The loggers records are created on (a filter on a logger sees only its own records).
LOGGERS = (
    "sunflower.serving",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "fastapi",
    "starlette",
    "sqlalchemy.engine.Engine",
    "sqlalchemy.pool.impl.QueuePool",
    "models.predictor",
    "models.one_row",
)

_PATH_IDS = re.compile(r"(/(?:persons|people|workers|caseload|districts|towns)/)(?!\{)[^/\s?#\"']+")
_QUERY = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")
_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\s|$)", re.DOTALL)


def redact_text(text: str) -> str:
    """``text`` with ids in URL paths, query strings and SQL parameters removed."""
    text = _PARAMETERS.sub("[parameters withheld]", text)
    text = _PATH_IDS.sub(r"\1…", text)
    return _QUERY.sub(r"\1?…", text)


def exception_text(exc: BaseException) -> str:
    """A traceback with frames and exception types, but no exception messages."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_list(traceback.extract_tb(current.__traceback__)))
        kind = type(current)
        head = (
            f"{kind.__module__}.{kind.__qualname__}"
            if kind.__module__ != "builtins"
            else kind.__qualname__
        )
        parts.append(
            "Traceback (most recent call last):\n"
            + frames
            + f"{head} (message withheld: {len(str(current))} characters)"
        )
        cause = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        current = cause
    return "\n\nwhich was caused by:\n\n".join(parts)


class Redact(logging.Filter):
    """Rewrites each record's message and exception text; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep its bare template
            message = str(record.msg)
        record.msg, record.args = redact_text(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = exception_text(record.exc_info[1])
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


_FILTER = Redact()


def install() -> None:
    """Put the filter on every logger of :data:`LOGGERS` (once)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
