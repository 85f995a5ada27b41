"""CSV exports: the one writer every export uses.

Contract: :func:`csv_bytes` renders a header and rows as UTF-8 CSV with a BOM
(so spreadsheet programs read the Chinese text); every text cell goes through
:func:`safe_cell`, so a stored value such as ``=HYPERLINK(…)`` or
``=cmd|' /C calc'!A0`` arrives as text, never as a formula (OWASP "CSV
injection"). :func:`csv_response` is the download. Routes render the whole
file *before* they audit and answer, so a failure audits nobody.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from fastapi.responses import Response

#: A cell starting with one of these is read as a formula by spreadsheet programs
#: (OWASP CSV injection); such a text cell gets a leading single quote.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | None


def safe_cell(value: Cell) -> Cell:
    """``value``, with a text cell that a spreadsheet would run as a formula made inert.

    Numbers stay numbers (a negative ``change`` is a number, not text).
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """The file: header, then rows, every text cell through :func:`safe_cell`."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([safe_cell(h) for h in header])
    w.writerows([safe_cell(c) for c in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")


def csv_response(content: bytes, filename: str) -> Response:
    """A CSV download named ``filename``."""
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
