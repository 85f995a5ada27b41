"""The ground truth: each outcome's label probability given the hidden state.

Contract: for the people in the cohort at a month start (``as_of``),
:func:`label_probabilities` returns p = P(the outcome's label is positive),
the label being DESIGN §3's: relapse = a urine or hair test with result
positive or refused with ``as_of <= ts < as_of + horizon``; loss of contact =
a ``lost_contact`` event in that window. Exits end observation: a person who
leaves before an outcome contributes a negative (so the mean of p matches the
share of cohort rows whose label turns out positive, counting rows whose
window the exit cut short as not positive).

Method (documented in docs/simulator.md): within a calendar month every daily
rate is constant (:mod:`simulator.hazard`), and the hidden state that
moves daily is two-valued (abstinent / using) plus absorbing outcomes (label,
exit, abscond). Given a path of the monthly latent factors, the label
probability is therefore exact: each stretch of n days with constant rates is
one 2x2 matrix power and geometric sum, done in closed form from the
eigenvalues. The factor paths themselves (up to three month-start switches in
a 90-day window) are sampled ``paths`` times; p is the mean over paths and its
Monte-Carlo standard error is returned with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.config import SimConfig
from simulator.hazard import COVARIATES, Cov, Rates, Static, month_rates, step_covariates

_SPLIT = 5e-7


@dataclass
class CohortState:
    """Hidden state of the people in contact at as_of (all arrays one per person)."""

    static: Static
    cov: Cov
    using: np.ndarray
    days_since_release: np.ndarray
    days_to_end: np.ndarray  # planned end - as_of (>= 0): last day in the programme
    #: days from as_of to each calendar month start inside the window, ascending
    month_starts: tuple[int, ...]
    #: the configuration in force in the as_of month and at each month start
    #: (differs only under a dated shift, :mod:`simulator.shifts`); empty = ``cfg``
    configs: tuple[SimConfig, ...] = ()


def _f_pow(lam: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.asarray(np.power(lam, n))


def _f_geo(lam: np.ndarray, n: np.ndarray) -> np.ndarray:
    one_minus = 1.0 - lam
    safe = np.where(np.abs(one_minus) < 1e-12, 1.0, one_minus)
    return np.asarray(
        np.where(np.abs(one_minus) < 1e-12, n, -np.expm1(n * np.log(np.abs(lam))) / safe)
    )


def _coefficients(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    l1: np.ndarray,
    l2: np.ndarray,
    n: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """f(M) = c1 M + c0 I for a 2x2 M with eigenvalues l1 > l2."""
    f1, f2 = f(l1, n), f(l2, n)
    c1 = (f1 - f2) / (l1 - l2)
    return c1, f1 - l1 * c1


def block(
    va: np.ndarray,
    vu: np.ndarray,
    keep_a: np.ndarray,
    keep_u: np.ndarray,
    onset: np.ndarray,
    remit: float,
    gain_a: np.ndarray,
    gain_u: np.ndarray,
    n: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n days with constant rates, in closed form.

    Each day: the label gains ``v . gain``; then v <- (v * keep) @ T with
    T = [[1-onset, onset], [remit, 1-remit]]. Returns (total gain, va, vu).
    """
    m11, m12 = keep_a * (1 - onset), keep_a * onset
    m21, m22 = keep_u * remit, keep_u * (1 - remit)
    disc = np.sqrt(np.maximum((m11 - m22) ** 2 + 4 * m12 * m21, 0.0))
    mid, half = (m11 + m22) / 2, np.maximum(disc / 2, _SPLIT)
    l1, l2 = mid + half, mid - half
    n = n.astype(float)
    g1, g0 = _coefficients(_f_geo, l1, l2, n)
    p1, p0 = _coefficients(_f_pow, l1, l2, n)
    ma, mu = va * m11 + vu * m21, va * m12 + vu * m22
    gain = g1 * (ma * gain_a + mu * gain_u) + g0 * (va * gain_a + vu * gain_u)
    return gain, p1 * ma + p0 * va, p1 * mu + p0 * vu


def _paths(cfg: SimConfig, state: CohortState, k: int, rng: np.random.Generator) -> list[Rates]:
    """Rates for the as_of month and each later month start, for k factor paths."""
    rows = len(state.using)
    st = state.static.repeat(k)
    cov = {name: np.tile(state.cov[name], k) for name in COVARIATES}
    dsr = np.tile(state.days_since_release, k)
    configs = state.configs or (cfg,) * (len(state.month_starts) + 1)
    first = month_rates(configs[0], state.static, state.cov, state.days_since_release)
    tiled: dict[str, Any] = {
        f: v if np.isscalar(v) else np.tile(v, k) for f, v in vars(first).items()
    }
    rates = [Rates(**tiled)]
    for offset, month_cfg in zip(state.month_starts, configs[1:], strict=True):
        cov = step_covariates(cfg, st, cov, dsr + offset, rng.random((len(COVARIATES), rows * k)))
        rates.append(month_rates(month_cfg, st, cov, dsr + offset))
    return rates


def _integrate(
    cfg: SimConfig,
    stack: dict[str, np.ndarray],
    remit: float,
    u0: np.ndarray,
    pts: np.ndarray,
    bounds: np.ndarray,
    end: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Both label probabilities over the segments between breakpoints ``pts``.

    ``pts`` is either one row of breakpoints shared by every row (then each
    segment's rates are a plain slice) or one row of breakpoints per row.
    """
    loc, p_ex = cfg.loss_of_contact, cfg.exits.after_positive
    count_until = cfg.truth.horizon_days - loc.declare_after_days
    abscond_until = end - loc.no_abscond_last_days
    rel = {"va": 1.0 - u0, "vu": u0.copy(), "p": np.zeros(len(u0))}
    lost = {"va": 1.0 - u0, "vu": u0.copy(), "p": np.zeros(len(u0))}
    col = np.arange(len(u0))
    for j in range(pts.shape[-1] - 1):
        s, n = pts[..., j], pts[..., j + 1] - pts[..., j]
        m = np.searchsorted(bounds, s, side="right")
        par = {name: arr[m] if pts.ndim == 1 else arr[m, col] for name, arr in stack.items()}
        # Shared breakpoints are only used for rows alive and allowed to abscond throughout.
        alive = s <= end
        allow = (s <= abscond_until).astype(float) if pts.ndim > 1 else 1.0
        count = (s < count_until) * 1.0
        ab_a, ab_u = par["abscond_a"] * allow, par["abscond_u"] * allow
        stay_a, stay_u = 1 - par["exit_a"], 1 - par["exit_u"]
        n = np.broadcast_to(n, u0.shape)
        if pts.ndim > 1:  # past the planned end nobody is left to observe
            for v in (rel, lost):
                v["va"], v["vu"] = np.where(alive, v["va"], 0.0), np.where(alive, v["vu"], 0.0)
        gain, va, vu = block(
            rel["va"], rel["vu"],
            (1 - par["pi_a"]) * stay_a * (1 - ab_a), (1 - par["pi_u"]) * stay_u * (1 - ab_u),
            par["onset"], remit, par["pi_a"], par["pi_u"], n,
        )  # fmt: skip
        rel["p"], rel["va"], rel["vu"] = rel["p"] + gain, va, vu
        test_a, test_u = 1 - par["pi_a"] * p_ex, 1 - par["pi_u"] * p_ex
        gain, va, vu = block(
            lost["va"], lost["vu"],
            test_a * stay_a * (1 - ab_a), test_u * stay_u * (1 - ab_u),
            par["onset"], remit, test_a * stay_a * ab_a * count, test_u * stay_u * ab_u * count, n,
        )  # fmt: skip
        lost["p"], lost["va"], lost["vu"] = lost["p"] + gain, va, vu
    return rel["p"], lost["p"]


def label_probabilities(
    cfg: SimConfig, state: CohortState, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(p_relapse, p_loss_of_contact, se_relapse, se_loss_of_contact) per person."""
    rows, k = len(state.using), cfg.truth.paths
    horizon, loc = cfg.truth.horizon_days, cfg.loss_of_contact
    if rows == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    rates = _paths(cfg, state, k, rng)
    stack = {
        name: np.stack([np.broadcast_to(getattr(r, name), (rows * k,)) for r in rates])
        for name in ("onset", "pi_a", "pi_u", "exit_a", "exit_u", "abscond_a", "abscond_u")
    }
    end = np.tile(state.days_to_end, k)
    u0 = np.tile(state.using, k).astype(float)
    bounds = np.asarray(state.month_starts, dtype=np.int64)
    common = np.unique([0, *state.month_starts, horizon - loc.declare_after_days, horizon])
    # Most rows are far from their planned end: their breakpoints are shared.
    far = end - loc.no_abscond_last_days >= horizon - 1
    p_rel, p_loc = np.zeros(rows * k), np.zeros(rows * k)
    sel = np.flatnonzero(far)
    sub = {name: arr[:, sel] for name, arr in stack.items()}
    p_rel[sel], p_loc[sel] = _integrate(cfg, sub, rates[0].remit, u0[sel], common, bounds, end[sel])
    sel = np.flatnonzero(~far)
    if len(sel):
        own = [end[sel] + 1, end[sel] - loc.no_abscond_last_days + 1]
        pts = np.clip(np.column_stack([np.broadcast_to(common, (len(sel), len(common))), *own]),
                      0, horizon)  # fmt: skip
        sub = {name: arr[:, sel] for name, arr in stack.items()}
        p_rel[sel], p_loc[sel] = _integrate(
            cfg, sub, rates[0].remit, u0[sel], np.sort(pts, axis=1), bounds, end[sel]
        )
    by_rel = np.clip(p_rel, 0.0, 1.0).reshape(k, rows)
    by_loc = np.clip(p_loc, 0.0, 1.0).reshape(k, rows)
    se_rel = by_rel.std(axis=0, ddof=1) / np.sqrt(k) if k > 1 else np.zeros(rows)
    se_loc = by_loc.std(axis=0, ddof=1) / np.sqrt(k) if k > 1 else np.zeros(rows)
    return by_rel.mean(axis=0), by_loc.mean(axis=0), se_rel, se_loc
