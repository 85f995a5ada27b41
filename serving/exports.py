"""CSV exports: the one writer every export uses.

Contract: :func:`csv_bytes` renders a header and rows as UTF-8 CSV with a BOM
(so spreadsheet programs read the Chinese text); :func:`csv_response` is the
download. Routes render the whole file *before* they audit and answer, so a
failure audits nobody.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from fastapi.responses import Response

Cell = str | int | float | None


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """The file: header, then rows."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def csv_response(content: bytes, filename: str) -> Response:
    """A CSV download named ``filename``."""
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
