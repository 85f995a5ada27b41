"""The input data contract (DESIGN §2), declared once.

Contract: this module only *declares* the two input tables — column names,
kinds, whether required, enumerations, bounds — and the per-type results of
events. Validation (:mod:`features.validate`), storage (:mod:`features.store`),
the simulator and the feature pipeline all read these declarations; nothing
else may restate a column list or an enumeration.

Canonical in-memory form (what :func:`features.validate.validate_persons` and
``validate_events`` return, what the store holds, what ``build_features``
takes): strings as pandas strings (missing = NA), ints as nullable ``Int64``,
floats as ``float64``, dates and datetimes as naive ``datetime64[us]`` in
Asia/Shanghai local time (China has no daylight saving, so this is lossless).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

LOCAL_TZ = "Asia/Shanghai"
LOCAL_ZONE = ZoneInfo(LOCAL_TZ)


def local_now() -> datetime:
    """Now as a naive Asia/Shanghai time: the one clock for every time the service stores."""
    return datetime.now(LOCAL_ZONE).replace(tzinfo=None)


def with_zone(value: datetime) -> datetime:
    """A stored (naive, Asia/Shanghai) time with its offset, as the API writes it (+08:00)."""
    return value.replace(tzinfo=LOCAL_ZONE) if value.tzinfo is None else value


Kind = Literal["string", "int", "float", "date", "datetime", "enum"]


@dataclass(frozen=True)
class TextRule:
    """What a text value may be: its length and, for ids and names, its alphabet."""

    max_length: int
    #: A regular expression the whole value must match (None: any text).
    pattern: str | None = None
    #: The rejection code when it does not match, and the rule in words.
    code: str = ""
    words: str = ""


#: Characters no text value may contain, anywhere: C0 and C1 controls (NUL, ESC, tab,
#: line breaks, DEL…) and the bidirectional overrides that make text display reordered.
#: Not a raw string on purpose: the class holds the characters themselves, which both
#: Python's ``re`` and the RE2 of Arrow-backed pandas strings read the same way.
CONTROL_CHARACTERS = "[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"

#: A person id: pseudonymous, safe in a URL path, a file name and a spreadsheet cell.
PERSON_ID = TextRule(
    64,
    r"[A-Za-z0-9][A-Za-z0-9._:-]*",
    "bad_id",
    "letters, digits and . _ : - only, starting with a letter or digit",
)
#: Names used in URL paths (district, town, worker id): no path separators.
PATH_NAME = TextRule(64, r"[^/\\]+", "bad_name", "no / or \\ (it is part of URL paths)")
EVENT_ID = TextRule(128)
#: Short codes (an event's result or source).
WORD = TextRule(40)
#: Free text (marital status, education).
FREE_TEXT = TextRule(64)


@dataclass(frozen=True)
class Column:
    """One column of an input table."""

    name: str
    kind: Kind
    required: bool
    description: str
    choices: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    #: Free text may hold personal details: never echoed into reports or logs.
    free_text: bool = False
    #: Known values of a free-text column that the feature pipeline codes (one-hot);
    #: not enforced at the door: another word is kept as sent and codes as none of them.
    coded: tuple[str, ...] = ()
    #: Text columns: length and alphabet (every text value is also free of
    #: :data:`CONTROL_CHARACTERS`).
    text: TextRule | None = None
    #: Dates and times: how many days after the load's date (today, Asia/Shanghai) the
    #: value may lie (to the end of that day); a later one is ``date_out_of_range``.
    future_days: int | None = None


#: No date or time before this is plausible (the same floor as ``birth_year``).
DATE_MIN = date(1900, 1, 1)


#: The largest event ``value`` accepted (a quantity or a number of days): far above any
#: real one, far below where sums over a history lose precision or overflow.
VALUE_MAX = 1_000_000.0

SEXES = ("M", "F")
PROGRAMS = ("community_detox", "community_rehab")
DRUGS = ("heroin", "methamphetamine", "ketamine", "cannabis", "other")
HOUSEHOLDS = ("local", "non_local")
LIVING = ("with_family", "alone", "other")
#: Marital status as the feature pipeline codes it (the column stays free text).
MARITAL = ("single", "married", "divorced", "widowed")
SOURCES = ("police", "lab", "worker", "pharmacy", "other_district")

PERSON_COLUMNS: tuple[Column, ...] = (
    Column(
        "person_id", "string", True, "pseudonymous id; never a name or ID number", text=PERSON_ID
    ),
    Column("sex", "enum", True, "M/F", choices=SEXES),
    Column("birth_year", "int", True, "year of birth", min_value=1900, max_value=2030),
    Column("district", "string", True, "district (区)", text=PATH_NAME),
    Column("town", "string", True, "town (街镇)", text=PATH_NAME),
    Column("worker_id", "string", True, "assigned social worker", text=PATH_NAME),
    Column("program", "enum", True, "community_detox / community_rehab", choices=PROGRAMS),
    Column("program_start", "date", True, "agreement start", future_days=366),
    Column("program_end", "date", True, "planned agreement end", future_days=3650),
    Column("primary_drug", "enum", True, "main drug", choices=DRUGS),
    Column("first_use_year", "int", False, "year of first use", min_value=1900, max_value=2030),
    Column(
        "prior_compulsory_detox",
        "int",
        False,
        "prior compulsory detox episodes",
        min_value=0,
        max_value=99,
    ),
    Column("household", "enum", False, "household registration (户籍)", choices=HOUSEHOLDS),
    Column("living", "enum", False, "living situation", choices=LIVING),
    Column(
        "marital",
        "string",
        False,
        "marital status",
        free_text=True,
        coded=MARITAL,
        text=FREE_TEXT,
    ),
    Column("education", "string", False, "education", free_text=True, text=FREE_TEXT),
)

#: The contract's version (docs/data-contract.md, "Versions"): bumped whenever what a
#: column means changes. contract-2 (issue 17) gives two event types' ``result`` and
#: ``value`` a meaning; no column was added or removed, and every contract-1 file loads
#: unchanged with the same meaning.
CONTRACT_VERSION = "contract-2"

#: ``controlled_medicine_purchase``: ``result`` is ``<medicine>@<pharmacy id>`` (either
#: part may be empty; no ``@`` means a medicine with no pharmacy named), ``value`` the
#: quantity in packages (boxes or bottles). Known medicine words, not
#: enforced (another is kept as sent): codeine-containing syrups, compound licorice
#: tablets, diphenoxylate, tramadol, dextromethorphan, zolpidem, diazepam, other.
CONTROLLED_MEDICINES = (
    "codeine_syrup",
    "compound_licorice",
    "diphenoxylate",
    "tramadol",
    "dextromethorphan",
    "zolpidem",
    "diazepam",
    "other",
)
#: Separates the medicine from the pharmacy id in a purchase's ``result``.
PLACE_MARK = "@"


def split_purchase(result: str | None) -> tuple[str | None, str | None]:
    """(medicine, pharmacy id) of a ``controlled_medicine_purchase`` result; None when absent.

    The pharmacy is the text after the last ``@``; spaces around either part are
    removed (the feature engine reads the pharmacy by the same rule, in numpy and SQL).
    """
    if result is None or not str(result).strip(" "):
        return None, None
    text = str(result)
    medicine, mark, pharmacy = text.rpartition(PLACE_MARK)
    if not mark:
        return text.strip(" ") or None, None
    return medicine.strip(" ") or None, pharmacy.strip(" ") or None


TEST_RESULTS = ("negative", "positive", "refused", "invalid")
EXIT_RESULTS = ("completed", "violation", "custody", "death", "transferred")

#: Event type -> allowed results. An empty tuple means "result not used" (any
#: value, including empty, is kept as given); a non-empty tuple makes the
#: result required and restricted to those values.
EVENT_RESULTS: dict[str, tuple[str, ...]] = {
    "check_in": ("attended", "missed"),
    "urine_test": TEST_RESULTS,
    "hair_test": TEST_RESULTS,
    "home_visit": (),
    "counselling": (),
    "peer_education": (),
    "family_contact": (),
    "employment_start": (),
    "employment_end": (),
    "controlled_medicine_purchase": (),
    "leave_notice": (),
    "transfer_out": (),
    "transfer_in": (),
    "lost_contact": (),
    "contact_restored": (),
    "program_exit": EXIT_RESULTS,
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_RESULTS)

#: What a worker found on a home visit. Known and coded by the feature pipeline,
#: but not enforced at the door: another word is kept as sent and counts as an
#: unspecified visit (sources differ in how they record visits).
HOME_VISIT_RESULTS = ("met", "not_home", "moving", "concern")

#: Event type -> results the feature pipeline codes: the enforced ones above
#: plus the known-but-optional ones.
EVENT_CODED_RESULTS: dict[str, tuple[str, ...]] = {
    **{t: r for t, r in EVENT_RESULTS.items() if r},
    "home_visit": HOME_VISIT_RESULTS,
}

EVENT_COLUMNS: tuple[Column, ...] = (
    Column(
        "event_id",
        "string",
        True,
        "unique; loading the same id twice is a no-op",
        text=EVENT_ID,
    ),
    Column("person_id", "string", True, "must exist in persons", text=PERSON_ID),
    Column("ts", "datetime", True, "when it happened", future_days=1),
    Column(
        "recorded_at",
        "datetime",
        False,
        "when the system learned it; default ts; >= ts",
        future_days=1,
    ),
    Column("type", "enum", True, "event type", choices=EVENT_TYPES),
    Column("result", "string", False, "meaning depends on type", text=WORD),
    Column(
        "value",
        "float",
        False,
        "quantity (medicine), days away (leave notice), insured months (placement)",
        min_value=0,
        max_value=VALUE_MAX,
    ),
    Column("source", "string", False, "who sent it; usually one of SOURCES", text=WORD),
)

PERSON_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in PERSON_COLUMNS)
EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in EVENT_COLUMNS)
