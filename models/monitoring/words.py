"""The verdict in plain Chinese, for supervisors and model owners (issue 16).

Contract: :func:`sentences_zh` turns a :class:`models.monitoring.verdict.Verdict`
of one outcome into short sentences a supervisor can read: the verdict first,
then one sentence per piece of evidence (``info`` items left out), most
serious first. No code words: features are named by the catalog's own
Chinese description with the value left open (``在过去30天内漏报到几次``),
groups by the catalog's words for their category (``主要毒品为其他毒品的人``),
scopes as 全区 or the town's name, dates as 2025年6月1日.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from features.catalog import load_catalog
from models.monitoring.verdict import Verdict

OUTCOME_ZH = {"relapse": "复吸", "loss_of_contact": "脱管失控"}
LEVEL_ZH = {
    "ok": "{o}模型运行正常：输入数据与训练时相近，已揭晓的名单质量符合预期。",
    "watch": "{o}模型需要关注：有迹象表明数据或效果发生了变化，请留意后续几期的结果。",
    "retrain": "建议重新训练{o}模型：连续两期已揭晓的名单显示模型的判断已明显偏离实际。",
}
#: person columns behind the fairness attributes (for the catalog's choice words)
ATTRIBUTE_COLUMNS = {"sex": "sex", "drug": "primary_drug", "household": "household"}


def feature_zh(name: str) -> str:
    """A feature column or one-hot group in the catalog's words, the value left open."""
    catalog = load_catalog()
    for feat in catalog.features():
        if feat.name == name:
            return feat.zh.replace("{value}", "几")
    for spec in catalog.specs:
        if spec.name == name:
            return spec.zh.replace("{choice}", "哪种").replace("{value}", "几")
    return "一项输入"


def group_zh(key: str) -> str:
    """``drug=other`` -> 主要毒品为其他毒品的人; ``age_band=30-39`` -> 30–39岁的人."""
    attr, _, value = key.partition("=")
    if attr == "age_band":
        if value.startswith("<"):
            return f"{value[1:]}岁以下的人"
        if value.endswith("+"):
            return f"{value[:-1]}岁及以上的人"
        return value.replace("-", "–") + "岁的人"
    column = ATTRIBUTE_COLUMNS.get(attr)
    labels = load_catalog().choice_labels.get(column or "", {})
    if value in labels:
        word = labels[value][0]
        if attr == "drug":
            return f"主要毒品为{word}的人"
        return word if attr == "sex" else f"{word}的人"
    return "户籍情况不详的人" if attr == "household" else "部分人群"


def _date(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "最近一期"
    d = pd.Timestamp(value)
    return f"{d.year}年{d.month}月{d.day}日"


def _where(e: dict[str, Any]) -> str:
    if e["scope"] == "district":
        return "全区"
    if e["scope"] == "town":
        return str(e["key"])
    return group_zh(str(e["key"]))


def evidence_zh(e: dict[str, Any]) -> str:
    """One piece of evidence as a sentence."""
    what, v, where = str(e["what"]), float(e["value"]), _where(e)
    if what.startswith("PSI ") and what != "PSI score":
        return f"{where}“{feature_zh(what[4:])}”这一项的分布与训练时明显不同（稳定性指数{v:.2f}）。"
    if what == "PSI score":
        return (
            f"{where}的风险概率分布与训练时不同（稳定性指数{v:.2f}），各风险等级的人数会随之变化。"
        )
    if what.startswith("missing share "):
        return (
            f"{where}“{feature_zh(what[len('missing share ') :])}”缺失的比例变化了"
            f"{v * 100:+.0f}个百分点，可能是某个数据来源中断或改变。"
        )
    if what == "expected precision@10%":
        return f"按当前概率估计，全区前10%名单中约{v:.0%}的人会出现该结果，低于训练时的水平。"
    when = _date(e.get("as_of"))
    if what.startswith("precision@10%"):
        return (
            f"{when}的名单已揭晓：{where}前10%名单中实际出现该结果的比例比概率估计低"
            f"{-v * 100:.0f}个百分点。"
        )
    if what.startswith("observed / expected"):
        side = "多" if v > 1 else "少"
        return (
            f"{when}的名单已揭晓：{where}实际发生的人数是预测的{v:.2f}倍（比预测{side}），"
            "概率已不再准确，风险等级会因此偏移。"
        )
    if what.startswith("ROC AUC"):
        return f"{when}的名单已揭晓：模型区分高低风险的能力比训练时下降了{-v:.2f}。"
    return f"{where}出现了需要留意的变化。"


def sentences_zh(verdict: Verdict, outcome: str, limit: int = 6) -> list[str]:
    """The verdict and its evidence in plain Chinese (at most ``limit`` evidence sentences)."""
    name = OUTCOME_ZH.get(outcome, "风险")
    out = [LEVEL_ZH[verdict.level].format(o=name)]
    acted = [e for e in verdict.evidence if e["level"] != "info"]
    out += [evidence_zh(e) for e in acted[:limit]]
    if len(acted) > limit:
        out.append(f"另有{len(acted) - limit}条相关迹象。")
    return out
