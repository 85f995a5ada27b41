"""The verdict in plain Chinese: every kind of evidence has a sentence with no code words."""

from __future__ import annotations

import re

import pandas as pd

from models.monitoring.verdict import Verdict
from models.monitoring.words import feature_zh, group_zh, sentences_zh

CODE = re.compile(r"[A-Za-z_]{2,}|\{|\}|=")


def _e(level: str, scope: str, key: str, what: str, value: float) -> dict:
    return {
        "level": level,
        "scope": scope,
        "key": key,
        "what": what,
        "value": value,
        "threshold": 0.0,
        "reason": "",
        "as_of": pd.Timestamp("2025-06-01"),
    }


def test_every_kind_of_evidence_reads_as_plain_chinese() -> None:
    evidence = [
        _e("retrain", "district", "all", "observed / expected positives", 0.67),
        _e("retrain", "group", "drug=other", "observed / expected positives", 1.6),
        _e("watch", "district", "all", "precision@10% realised - expected", -0.08),
        _e("watch", "district", "all", "ROC AUC realised - at training", -0.07),
        _e("watch", "town", "竹浦街道", "PSI family_contacts_30d", 0.52),
        _e("watch", "district", "all", "PSI drug", 0.3),
        _e("watch", "district", "all", "PSI score", 0.12),
        _e("watch", "district", "all", "missing share years_of_use_imp", 0.2),
        _e("watch", "district", "all", "expected precision@10%", 0.22),
        _e("info", "district", "all", "PSI checkins_attended_all", 0.4),
    ]
    got = sentences_zh(Verdict("retrain", evidence), "relapse", limit=20)
    assert got[0].startswith("建议重新训练复吸模型")
    assert len(got) == 10  # the info item is left out
    for sentence in got:
        assert not CODE.search(sentence), sentence
    assert "2025年6月1日" in got[1] and "主要毒品为其他毒品的人" in got[2]
    assert "竹浦街道“在过去30天内与家属联系几次”" in got[5]
    assert sentences_zh(Verdict("ok"), "loss_of_contact") == [
        "脱管失控模型运行正常：输入数据与训练时相近，已揭晓的名单质量符合预期。"
    ]


def test_feature_and_group_words() -> None:
    assert feature_zh("age") == "年龄几岁"
    assert feature_zh("drug") == "主要毒品为哪种"
    assert group_zh("age_band=<30") == "30岁以下的人"
    assert group_zh("age_band=50+") == "50岁及以上的人"
    assert group_zh("age_band=30-39") == "30–39岁的人"
    assert group_zh("sex=F") == "女性"
    assert group_zh("household=unknown") == "户籍情况不详的人"
