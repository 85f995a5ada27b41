"""List exports of the pages: the rows a worker sees, as CSV or as an .xlsx workbook.

Contract: :func:`table` turns list rows (:class:`serving.web.listing.Row`) into
a header and cells in the page's language — the same order, both outcomes, the
main reason, plan items and alerts. :func:`csv_file` writes them with
:func:`serving.exports.csv_bytes` (UTF-8 with BOM, formula-like text made
inert); :func:`xlsx_file` writes a one-sheet workbook with openpyxl (every text
cell through :func:`serving.exports.safe_cell` as well).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from openpyxl import Workbook

from features.config import OUTCOMES
from serving.exports import Cell, csv_bytes, safe_cell
from serving.web.reasons import Lang

from .i18n import translator
from .listing import Row

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def table(
    rows: Sequence[Row], lang: Lang, horizon: str = "90"
) -> tuple[list[str], list[list[Cell]]]:
    t = translator(lang, horizon)
    header = [t("rank"), t("person")]
    for o in OUTCOMES:
        name = t(o + "_risk")
        header += [f"{name} · {t('band')}", f"{name} · {t('probability')}", f"{name} · Δpp"]
    header += [t("top_reason"), t("plan_short"), t("alerts")]
    body: list[list[Cell]] = []
    for r in rows:
        cells: list[Cell] = [r.position, r.person_id]
        for o in OUTCOMES:
            item = r.items.get(o)
            if item is None:
                cells += [None, None, None]
                continue
            change = item.get("change")
            cells += [
                str(item["band"][lang]),
                round(float(item["p"]), 4),
                None if change is None else round(float(change) * 100, 1),
            ]
        reason = r.reason.text(lang) if r.reason else ""
        cells += [
            reason,
            "、".join(p.words(lang) for p in r.plan)
            if lang == "zh"
            else ", ".join(p.words(lang) for p in r.plan),
            "；".join(str(a[lang]) for a in r.alerts),
        ]
        body.append(cells)
    return header, body


def csv_file(rows: Sequence[Row], lang: Lang, horizon: str = "90") -> bytes:
    header, body = table(rows, lang, horizon)
    return csv_bytes(header, body)


def xlsx_file(rows: Sequence[Row], lang: Lang, sheet: str = "list", horizon: str = "90") -> bytes:
    """A workbook with one sheet (openpyxl): the header row, then one row per person."""
    header, body = table(rows, lang, horizon)
    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet[:31] or "list")
    grid: list[Sequence[Cell]] = [header, *body]
    for cells in grid:
        ws.append([_cell(v) for v in cells])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Cell) -> Cell:
    """Numbers stay numbers; text goes through :func:`serving.exports.safe_cell`, so a
    value that starts like a formula is stored as text, never evaluated."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    return safe_cell(str(value))
