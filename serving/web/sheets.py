"""List exports of the pages: the rows a worker sees, as CSV or as an .xlsx workbook.

Contract: :func:`table` turns list rows (:class:`serving.web.listing.Row`) into
a header and cells in the page's language — the same order, both outcomes, the
main reason, plan items and alerts. :func:`csv_file` writes them with
:func:`serving.exports.csv_bytes` (UTF-8 with BOM, formula-like text made
inert); :func:`xlsx_file` writes a one-sheet Office Open XML workbook with the
standard library (inline strings, so no shared-string table; every text cell
through :func:`serving.exports.safe_cell` as well, and text is never a formula
in this format anyway). No dependency is added for it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from xml.sax.saxutils import escape

from serving.exports import Cell, csv_bytes, safe_cell
from serving.reasons import Lang

from .i18n import translator
from .listing import OUTCOMES, Row

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def table(rows: Sequence[Row], lang: Lang) -> tuple[list[str], list[list[Cell]]]:
    t = translator(lang)
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


def csv_file(rows: Sequence[Row], lang: Lang) -> bytes:
    header, body = table(rows, lang)
    return csv_bytes(header, body)


def _column(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, rest = divmod(i - 1, 26)
        name = chr(65 + rest) + name
    return name


def _cell(ref: str, value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = escape(str(safe_cell(str(value))))
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
    return f'<c r="{ref}"><v>{value!r}</v></c>'


def xlsx_file(rows: Sequence[Row], lang: Lang, sheet: str = "list") -> bytes:
    """A workbook with one sheet: the header row, then one row per person."""
    header, body = table(rows, lang)
    lines = []
    grid: list[Sequence[Cell]] = [header, *body]
    for n, cells in enumerate(grid, start=1):
        xml = "".join(_cell(f"{_column(i)}{n}", v) for i, v in enumerate(cells))
        lines.append(f'<row r="{n}">{xml}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006"
    parts = {
        "[Content_Types].xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Types xmlns="{pkg}/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="{pkg}/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<workbook {ns} xmlns:r="{rel}"><sheets>'
            f'<sheet name="{escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="{pkg}/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f"<worksheet {ns}><sheetData>{''.join(lines)}</sheetData></worksheet>"
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text.encode("utf-8"))
    return out.getvalue()
