"""Words for the things pages show: event types, results, alerts, cohorts, plan items, features.

Contract: pure lookups, zh-CN and English, following the glossary (DESIGN §8)
and the feature catalog (plan items, feature descriptions). Unknown codes come
back as the code itself, so a new event type shows up readable-enough rather
than crashing a page.
"""

from __future__ import annotations

from functools import cache

from features.catalog import Feature, FeatureSpec, load_catalog
from serving.explanations import plan_item_words

from .i18n import Lang

EVENT_TYPES: dict[str, tuple[str, str]] = {
    "check_in": ("报到", "check-in"),
    "urine_test": ("尿检", "urine test"),
    "hair_test": ("毛发检测", "hair test"),
    "home_visit": ("家访", "home visit"),
    "counselling": ("心理咨询", "counselling"),
    "peer_education": ("同伴教育", "peer education"),
    "family_contact": ("家属联系", "family contact"),
    "employment_start": ("开始就业", "employment started"),
    "employment_end": ("就业结束", "employment ended"),
    "controlled_medicine_purchase": ("购买特殊药品", "controlled medicine bought"),
    "leave_notice": ("外出报备", "leave notice"),
    "transfer_out": ("跨区域转出", "transferred out"),
    "transfer_in": ("跨区域转入", "transferred in"),
    "lost_contact": ("脱管失控", "lost contact"),
    "contact_restored": ("恢复联系", "contact restored"),
    "program_exit": ("解除/终止", "programme exit"),
    # recorded actions
    "plan_item": ("建议措施", "plan item"),
    "referral": ("转介", "referral"),
    "feedback": ("对评分的意见", "feedback on the score"),
    "other": ("其他工作", "other work"),
}

RESULTS: dict[str, tuple[str, str]] = {
    "attended": ("按时", "attended"),
    "missed": ("未到", "missed"),
    "negative": ("阴性", "negative"),
    "positive": ("阳性", "positive"),
    "refused": ("拒检", "refused"),
    "invalid": ("无效", "invalid"),
    "completed": ("期满解除", "completed"),
    "violation": ("严重违反协议", "violation"),
    "custody": ("羁押", "custody"),
    "death": ("死亡", "death"),
    "transferred": ("转出", "transferred"),
    "met": ("见到本人", "met in person"),
    "not_home": ("未见到本人", "not at home"),
    "moving": ("本人表示将搬走", "said they are moving"),
    "concern": ("发现异常情况", "a concern noted"),
    "done": ("已完成", "done"),
    "not_done": ("未完成", "not done"),
    "not_suitable": ("不适合", "not suitable"),
}

#: Results that deserve attention in a timeline (drawn with a warning mark).
WARNING_RESULTS = frozenset(
    {"missed", "positive", "refused", "violation", "not_home", "moving", "concern"}
)

#: An event's ``value`` with its unit (leave notice: days away; medicine: the quantity bought).
VALUE_UNITS: dict[str, tuple[str, str]] = {
    "leave_notice": ("外出{v}天", "{v} days away"),
    "controlled_medicine_purchase": ("数量{v}单位", "quantity {v} units"),
}


def event_value(event_type: str, value: float | None, lang: Lang) -> str:
    """An event's value in words with its unit ("外出4天"); other types: the number alone."""
    if value is None:
        return ""
    v = str(int(value)) if float(value).is_integer() else f"{value:.1f}"
    pair = VALUE_UNITS.get(event_type)
    return pick(pair, lang).format(v=v) if pair else v


WARNING_TYPES = frozenset({"lost_contact", "controlled_medicine_purchase", "transfer_in"})

ALERTS: dict[str, tuple[str, str]] = {
    "overdue_check_in": ("报到逾期", "check-in overdue"),
    "overdue_test": ("检测逾期", "test overdue"),
    "positive_test": ("新阳性", "new positive test"),
    "refused_test": ("新拒检", "test just refused"),
    "medicine_purchase": ("购买特殊药品", "controlled medicine bought"),
    "medicine_quantity_7d": ("7天购药量超限", "7-day medicine quantity above limit"),
    "medicine_quantity_30d": ("30天购药量超限", "30-day medicine quantity above limit"),
    "medicine_pharmacies": ("多家药店购药", "medicine from several pharmacies"),
    "medicine_sharp_rise": ("购药量骤增", "sharp rise in medicine bought"),
    "transfer_no_worker": ("转入未接手", "transferred in, no worker yet"),
}

COHORTS: tuple[str, ...] = ("agreement_ending", "transferred_in_recently", "first_90_days")

SOURCES: dict[str, tuple[str, str]] = {
    "police": ("公安", "police"),
    "lab": ("检测机构", "lab"),
    "worker": ("社工", "worker"),
    "pharmacy": ("药店", "pharmacy"),
    "other_district": ("外区", "other district"),
    "other": ("其他", "other"),
}


METRICS: dict[str, tuple[str, str]] = {
    "roc_auc": (
        "区分能力（AUC，1为完美，0.5为随机）",
        "discrimination (AUC; 1 perfect, 0.5 chance)",
    ),
    "pr_auc": ("找出高风险者的能力（PR-AUC）", "finding the people at risk (PR-AUC)"),
    "brier": (
        "概率误差（Brier分数，越小越好）",
        "probability error (Brier score; lower is better)",
    ),
    "ece": ("校准误差（ECE，越小越好）", "calibration error (ECE; lower is better)"),
    "precision_at_10pct": (
        "风险最高10%中确实发生的比例",
        "share of the top 10% who had the outcome",
    ),
    "recall_at_10pct": ("发生者中被排进前10%的比例", "share of outcomes found in the top 10%"),
    "precision_at_2_per_worker": (
        "每名社工前2人中确实发生的比例",
        "share of each worker's top 2 who had the outcome",
    ),
    "recall_at_2_per_worker": (
        "发生者中排在其社工前2名的比例",
        "share of outcomes among each worker's top 2",
    ),
}


def metric_name(key: str, lang: Lang) -> str:
    pair = METRICS.get(key)
    return pick(pair, lang) if pair else key


def pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "zh" else pair[1]


def word(table: dict[str, tuple[str, str]], code: str | None, lang: Lang) -> str:
    """``code`` in words, or the code itself when unknown."""
    if code is None:
        return ""
    pair = table.get(code)
    return pick(pair, lang) if pair else code


def plan_item(item_id: str | None, lang: Lang) -> str:
    if not item_id:
        return ""
    pair = plan_item_words().get(item_id)
    return pick(pair, lang) if pair else item_id


@cache
def _features() -> dict[str, Feature]:
    return {f.name: f for f in load_catalog().features()}


@cache
def _specs() -> dict[str, FeatureSpec]:
    return {s.name: s for s in load_catalog().specs}


def feature(name: str) -> Feature | None:
    """The catalog :class:`features.catalog.Feature` of a model column, or None."""
    return _features().get(name)


def is_state(spec: str) -> bool:
    """Whether a catalog entry is a yes/no state (e.g. employed_now)."""
    s = _specs().get(spec)
    return s is not None and s.kind == "state_now"


def spec_label(spec: str, lang: Lang, value_is_zero: bool = False) -> str:
    """A catalog entry as a group heading: the description without numbers.

    ``{period}漏报到{value}次`` becomes ``漏报到若干次`` ("missed several check-ins"):
    a heading with no literal placeholder; a yes/no state
    that raises risk when it is *off* (``employed_now`` = 0) uses its "off" words.
    """
    s = _specs().get(spec)
    if s is None:
        return spec
    zh, en = s.zh, s.en
    if value_is_zero and s.kind == "state_now" and s.missing_zh and s.missing_en:
        zh, en = s.missing_zh, s.missing_en
    text = zh if lang == "zh" else en
    some = "若干" if lang == "zh" else "several"
    text = text.replace("{period}", "").replace("{value}", some).replace("{choice}", "…")
    return " ".join(text.split())


def input_name(name: str, lang: Lang) -> str:
    """A model input the monitor names (a feature column or a one-hot group) in the
    catalog's words, the number left open (``在过去180天内尿检若干次``)."""
    f = feature(name)
    if f is None:
        return spec_label(name, lang) if name in _specs() else pick(("一项输入", "an input"), lang)
    text = f.zh if lang == "zh" else f.en
    return " ".join(text.replace("{value}", "若干" if lang == "zh" else "several").split())


#: Controlled medicines (features.contract.CONTROLLED_MEDICINES) in words.
MEDICINES: dict[str, tuple[str, str]] = {
    "codeine_syrup": ("含可待因止咳水", "codeine syrup"),
    "compound_licorice": ("复方甘草片", "compound licorice tablets"),
    "diphenoxylate": ("地芬诺酯", "diphenoxylate"),
    "tramadol": ("曲马多", "tramadol"),
    "dextromethorphan": ("右美沙芬", "dextromethorphan"),
    "zolpidem": ("唑吡坦", "zolpidem"),
    "diazepam": ("地西泮", "diazepam"),
    "other": ("其他特殊药品", "another controlled medicine"),
}


def medicine(code: str | None, lang: str) -> str:
    """A medicine's words; another word as sent; none as 特殊药品."""
    if not code:
        return "特殊药品" if lang == "zh" else "controlled medicine"
    found = MEDICINES.get(code)
    return code if found is None else found[0 if lang == "zh" else 1]
