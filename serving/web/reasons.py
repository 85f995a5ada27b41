"""Reasons and plan items in words a worker can act on (the pages' one place for them).

Contract: a stored driver (a dict of an explanation body, :func:`serving.explanations.driver_dict`)
is one of three kinds, :func:`kind_of`:

* ``sign`` — a **recent sign**: something that happened or is happening
  (missed check-ins, tests, home visits, employment, moves, medicine…): the
  catalog's actionable features outside the ``static`` family;
* ``concern`` — a supportive contact the person *received* (family contact,
  counselling, peer education, home visits, attended check-ins, tests) that
  the model associates with **higher** risk. Such contact is not bad: it rises
  when the worker, the family or the lab is already worried, so the model
  reads it as a sign of concern. It is worded so ("值得留意的信号：…") and
  suggests no plan item (more of the same contact is not a plan);
* ``quiet`` — a count of trouble (missed check-ins, positives, purchases…)
  that is 0 yet linked with higher risk: nothing happened, so it is shown but
  is neither the reason (while anything else qualifies) nor a plan item;
* ``background`` — a fixed fact (age, age at first use, years of use, prior
  detox, household, days in or to the end of the agreement): context on the
  person page, never "the reason".

:func:`main_reason` picks the list's one reason: the strongest risk-raising
sign of the leading outcome, else of the other outcome, else a concern, else
(only when nothing else raises the risk) the strongest sign that lowers it,
else a quiet count, else the strongest background fact, labelled as background. :func:`phrase`
words a driver without the model's raw contribution: the fact, then the size
in words (明显/—/略微), with no repeated direction words.

:func:`suggested_plan` gives the plan items (一人一策): from risk-raising
signs (the catalog's plan item), from current alerts (:data:`ALERT_PLAN`), and
— when a person at 高风险 or above has neither — the band's protocol
(:data:`BAND_PROTOCOL`), so nobody at 高风险 or above has an empty plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from features.catalog import Feature, load_catalog
from models.explain import MODERATE, STRONG
from serving.explanations import plan_item_words
from serving.priority import times_usual

Kind = Literal["sign", "concern", "quiet", "background"]
Lang = Literal["zh", "en"]

#: Catalog entries that count contact the person received: raising risk, they signal concern.
SUPPORT_CONTACTS = frozenset(
    {
        "family_contacts",
        "counselling",
        "peer_education",
        "home_visits",
        "checkins_attended",
        "tests",
    }
)

#: Catalog entries that count trouble (missed, positive, moves, purchases…): at 0 nothing
#: happened, so a 0 that the model links with higher risk is not a sign to act on.
TROUBLE_COUNTS = frozenset(
    {
        "checkins_missed",
        "checkins_missed_in_a_row",
        "tests_positive",
        "tests_refused",
        "home_visits_not_home",
        "home_visits_not_home_in_a_row",
        "home_visits_moving",
        "home_visits_concern",
        "transfers_in",
        "transfers_out",
        "leave_notices",
        "leave_days",
        "lost_contacts",
        "medicine_purchases",
        "medicine_quantity",
    }
)

#: Plan item for each alert kind (an alert is a sign the worker can act on today).
ALERT_PLAN: dict[str, str] = {
    "overdue_check_in": "home_visit",
    "overdue_test": "extra_testing",
    "positive_test": "medical_referral",
    "refused_test": "extra_testing",
    "medicine_purchase": "pharmacy_review",
    "medicine_quantity_7d": "pharmacy_review",
    "medicine_quantity_30d": "pharmacy_review",
    "medicine_pharmacies": "pharmacy_review",
    "medicine_sharp_rise": "pharmacy_review",
    "transfer_no_worker": "transfer_handover",
}

#: The band's protocol for 高风险 / 极高风险 when no sign or alert suggests an item.
BAND_PROTOCOL: dict[str, tuple[str, ...]] = {
    "relapse": ("home_visit", "extra_testing"),
    "loss_of_contact": ("home_visit",),
}

# The stored sentence is "{fact}，{effect}（+0.38）" / "{fact}: {effect} (+0.38)".
_EFFECT_ZH = re.compile(r"，(明显|略微)?(推高|降低)风险（[+-]?\d+(\.\d+)?）$")
_EFFECT_EN = re.compile(r": (strongly |slightly )?(raises|lowers) the risk \([+-]?\d+(\.\d+)?\)$")

SIZE_WORDS: dict[tuple[bool, int], tuple[str, str]] = {
    (True, 2): ("明显推高风险", "strongly raises the risk"),
    (True, 1): ("推高风险", "raises the risk"),
    (True, 0): ("略微推高风险", "slightly raises the risk"),
    (False, 2): ("明显降低风险", "strongly lowers the risk"),
    (False, 1): ("降低风险", "lowers the risk"),
    (False, 0): ("略微降低风险", "slightly lowers the risk"),
}
CONCERN_WORDS = (
    "值得留意的信号（这类接触往往在已有担心时增多，接触本身不是坏事）",
    "a sign of concern (such contact tends to grow when someone is already worried; "
    "the contact itself is not bad)",
)


@cache
def _catalog() -> dict[str, Feature]:
    return {f.name: f for f in load_catalog().features()}


@cache
def _static_specs() -> frozenset[str]:
    return frozenset(s.name for s in load_catalog().specs if s.family == "static")


def spec_of(driver: Mapping[str, Any]) -> str:
    name = str(driver.get("feature", ""))
    f = _catalog().get(name)
    return f.spec if f is not None else name


def kind_of(driver: Mapping[str, Any]) -> Kind:
    spec = spec_of(driver)
    if spec in _static_specs() or not driver.get("actionable", False):
        return "background"
    raises = driver["contribution"] > 0
    if spec in SUPPORT_CONTACTS and raises:
        return "concern"
    if spec in TROUBLE_COUNTS and raises and driver.get("value") == 0:
        return "quiet"
    return "sign"


def fact(driver: Mapping[str, Any], lang: Lang) -> str:
    """The driver's fact without the model's size and number ("最近连续5次家访未见到本人")."""
    if lang == "zh":
        return _EFFECT_ZH.sub("", str(driver["sentence_zh"]))
    return _EFFECT_EN.sub("", str(driver["sentence_en"]))


def size(contribution: float) -> int:
    c = abs(contribution)
    return 2 if c >= STRONG else 1 if c >= MODERATE else 0


def effect(driver: Mapping[str, Any], lang: Lang) -> str:
    """The size and direction in words, or the concern wording (a background fact is
    marked by where it is shown: a "背景" tag on the list, its own heading on the person page)."""
    i = 0 if lang == "zh" else 1
    k = kind_of(driver)
    if k == "concern":
        return CONCERN_WORDS[i]
    return SIZE_WORDS[(driver["contribution"] > 0, size(driver["contribution"]))][i]


def phrase(driver: Mapping[str, Any], lang: Lang) -> str:
    """One worker-facing line: fact, then size in words; never the raw contribution."""
    sep = "，" if lang == "zh" else ": "
    return f"{fact(driver, lang)}{sep}{effect(driver, lang)}"


@dataclass(frozen=True)
class Reason:
    """The reason shown for a person: the driver, its outcome and its kind."""

    driver: Mapping[str, Any]
    outcome: str
    kind: Kind

    @property
    def raises(self) -> bool:
        return bool(self.driver["contribution"] > 0)

    def text(self, lang: Lang) -> str:
        return phrase(self.driver, lang)


def leading_outcome(items: Mapping[str, Mapping[str, Any]]) -> str:
    """The outcome that puts the person where they are: higher band, then more unusual p."""
    return max(items, key=lambda o: (items[o]["band"]["level"], times_usual(o, items[o]["p"])))


def main_reason(drivers: Mapping[str, list[Mapping[str, Any]]], lead: str) -> Reason | None:
    """The list's one reason (see the module docstring); ``drivers`` by outcome."""
    order = [lead, *(o for o in drivers if o != lead)]
    tagged = [(o, d, kind_of(d)) for o in order for d in drivers.get(o, [])]
    tests: tuple[Callable[[Mapping[str, Any], str], bool], ...] = (
        lambda d, k: k == "sign" and d["contribution"] > 0,
        lambda d, k: k == "concern",
        lambda d, k: k == "sign",
        lambda d, k: k == "quiet",
        lambda d, k: k == "background",
    )
    for test in tests:
        for o, d, k in tagged:
            if test(d, k):
                return Reason(d, o, k)
    return None


@dataclass
class PlanSuggestion:
    """One suggested plan item, the outcomes it serves and why (worker phrases, zh/en)."""

    id: str
    outcomes: list[str] = field(default_factory=list)
    because: list[tuple[str, str]] = field(default_factory=list)
    source: Literal["sign", "alert", "protocol"] = "sign"
    last: dict[str, Any] | None = None

    def words(self, lang: Lang) -> str:
        pair = plan_item_words().get(self.id, (self.id, self.id))
        return pair[0] if lang == "zh" else pair[1]


PROTOCOL_WHY = (
    "{band}：按等级工作规程的默认措施（没有可直接对应的近期迹象）",
    "{band}: the band's default protocol (no recent sign points to an item)",
)
ALERT_WHY = ("当前预警：{alert}", "alert now: {alert}")


def suggested_plan(
    drivers: Mapping[str, list[Mapping[str, Any]]],
    bands: Mapping[str, Mapping[str, Any]],
    alerts: Iterable[Mapping[str, Any]],
) -> list[PlanSuggestion]:
    """Plan items from risk-raising signs, then alerts, then (高风险+) the band protocol.

    ``drivers`` and ``bands`` by outcome (stored band dicts); ``alerts`` the
    stored alert bodies (``kind``, ``zh``, ``en``).
    """
    out: dict[str, PlanSuggestion] = {}
    for outcome, ds in drivers.items():
        for d in ds:
            item = d.get("plan_item")
            if not item or kind_of(d) != "sign" or d["contribution"] <= 0:
                continue
            row = out.setdefault(item, PlanSuggestion(item))
            if outcome not in row.outcomes:
                row.outcomes.append(outcome)
            why = (phrase(d, "zh"), phrase(d, "en"))
            if why not in row.because:
                row.because.append(why)
    for a in alerts:
        item = ALERT_PLAN.get(str(a.get("kind")))
        if item is None:
            continue
        row = out.setdefault(item, PlanSuggestion(item, source="alert"))
        why = (ALERT_WHY[0].format(alert=a["zh"]), ALERT_WHY[1].format(alert=a["en"]))
        if why not in row.because:
            row.because.append(why)
    nothing_yet = not out
    for outcome, band in bands.items():
        if not nothing_yet or band["level"] < 3:
            continue
        for item in BAND_PROTOCOL[outcome]:
            row = out.setdefault(item, PlanSuggestion(item, source="protocol"))
            row.outcomes.append(outcome)
            row.because.append(
                (
                    PROTOCOL_WHY[0].format(band=band["zh"]),
                    PROTOCOL_WHY[1].format(band=band["en"]),
                )
            )
    for row in out.values():
        if not row.outcomes:
            row.outcomes = list(bands)
    return list(out.values())
