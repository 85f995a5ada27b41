"""Risk bands (风险等级): calibrated probabilities in words a worker can read.

Contract: :func:`band_of` maps an outcome's calibrated 90-day probability to a
band 1–4 (:data:`BAND_NAMES`: low, medium, high, very high). Thresholds are
absolute probabilities per outcome (:data:`THRESHOLDS`), not ranks, so a band
means the same thing in every caseload and on every day, and a quiet caseload
is allowed to be all "low". They sit near 1×, 2× and 4× each outcome's typical
90-day rate (relapse about 10%, loss of contact about 3%); see docs/serving.md.
"""

from __future__ import annotations

import numpy as np

#: Lower bounds of bands 2, 3 and 4 for each outcome (probability over 90 days).
THRESHOLDS: dict[str, tuple[float, float, float]] = {
    "relapse": (0.10, 0.20, 0.40),
    "loss_of_contact": (0.03, 0.08, 0.20),
}

BAND_NAMES: dict[int, tuple[str, str, str]] = {
    1: ("low", "低风险", "low"),
    2: ("medium", "中风险", "medium"),
    3: ("high", "高风险", "high"),
    4: ("very_high", "极高风险", "very high"),
}
BAND_CODES = {code: band for band, (code, _, _) in BAND_NAMES.items()}


def band_of(outcome: str, p: float) -> int:
    """The band (1–4) of one probability."""
    return int(bands_of(outcome, np.asarray([p]))[0])


def bands_of(outcome: str, p: np.ndarray) -> np.ndarray:
    """Bands (1–4) of an array of probabilities."""
    edges = np.asarray(THRESHOLDS[outcome])
    return np.searchsorted(edges, np.asarray(p, dtype=float), side="right") + 1


def band_words(band: int) -> dict[str, str | int]:
    """The band as the API shows it: number, code and words in both languages."""
    code, zh, en = BAND_NAMES[band]
    return {"level": band, "code": code, "zh": zh, "en": en}
