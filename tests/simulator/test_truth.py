"""truth.parquet: the right rows, exact arithmetic, and consistent with what happened.

Observed labels are computed here from the events by the DESIGN §3 rule, so
the test does not depend on the feature pipeline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.truth import block

pytestmark = pytest.mark.xdist_group("simulator_district")
HORIZON = pd.Timedelta(days=90)


def _cohort(persons: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp) -> set[str]:
    """DESIGN §3: program_start <= as_of < exit, not currently lost, not in custody."""
    before = events.loc[events["ts"] < as_of]
    started = persons.loc[pd.to_datetime(persons["program_start"]) <= as_of, "person_id"]
    exited = set(before.loc[before["type"] == "program_exit", "person_id"])
    contact = before.loc[before["type"].isin(["lost_contact", "contact_restored"])]
    last = contact.sort_values("ts", kind="stable").groupby("person_id")["type"].last()
    lost = set(last.index[last == "lost_contact"])
    return set(started) - exited - lost


def _observed(truth: pd.DataFrame, events: pd.DataFrame, outcome: str) -> pd.DataFrame:
    if outcome == "relapse":
        hit = events["type"].isin(["urine_test", "hair_test"]) & events["result"].isin(
            ["positive", "refused"]
        )
    else:
        hit = events["type"] == "lost_contact"
    rows = truth.loc[truth["outcome"] == outcome, ["person_id", "as_of", "p"]]
    pairs = rows.merge(events.loc[hit, ["person_id", "ts"]], on="person_id", how="left")
    inside = (pairs["ts"] >= pairs["as_of"]) & (pairs["ts"] < pairs["as_of"] + HORIZON)
    label = inside.groupby([pairs["person_id"], pairs["as_of"]]).any().rename("y")
    return rows.join(label, on=["person_id", "as_of"])


def test_block_matches_the_daily_recursion():
    rng = np.random.default_rng(3)
    n = 6
    keep_a, keep_u = rng.uniform(0.9, 1, n), rng.uniform(0.8, 1, n)
    onset, gain_a, gain_u = rng.uniform(0, 0.02, n), rng.uniform(0, 0.01, n), rng.uniform(0, 0.1, n)
    days = np.array([0, 1, 2, 17, 31, 90])
    va, vu = np.full(n, 0.6), np.full(n, 0.4)
    gain, a_n, u_n = block(va, vu, keep_a, keep_u, onset, 1 / 120, gain_a, gain_u, days)
    for i in range(n):
        a, u, total = va[i], vu[i], 0.0
        for _ in range(days[i]):
            total += a * gain_a[i] + u * gain_u[i]
            a, u = (
                a * keep_a[i] * (1 - onset[i]) + u * keep_u[i] / 120,
                a * keep_a[i] * onset[i] + u * keep_u[i] * (1 - 1 / 120),
            )
        assert gain[i] == pytest.approx(total, abs=1e-12)
        assert (a_n[i], u_n[i]) == pytest.approx((a, u), abs=1e-12)


def test_truth_rows_are_exactly_the_cohort_at_each_month_start(tables):
    persons, events, truth = tables["persons"], tables["events"], tables["truth"]
    truth = truth.assign(as_of=pd.to_datetime(truth["as_of"]))
    assert set(truth["outcome"]) == {"relapse", "loss_of_contact"}
    assert (truth["horizon_days"] == 90).all() and truth["p"].between(0, 1).all()
    months = sorted(truth["as_of"].unique())
    assert len(months) == 36 and all(m.day == 1 for m in months)
    for as_of in months[::5]:
        listed = set(
            truth.loc[(truth["as_of"] == as_of) & (truth["outcome"] == "relapse"), "person_id"]
        )
        assert listed == _cohort(persons, events, as_of), as_of


@pytest.mark.parametrize("outcome", ["relapse", "loss_of_contact"])
def test_mean_p_matches_the_observed_label_rate(tables, outcome):
    """Per quarter (non-overlapping windows) and overall, within sampling error.

    p counts a window cut short by an exit as not positive, so the comparison
    is with the share of *all* cohort rows whose label turned positive. Rows
    are independent Bernoulli(p) across people in one month; the Monte-Carlo
    error of p (~1e-3 per row) is far below that and is ignored. |z| < 4.
    """
    events, truth = tables["events"], tables["truth"]
    truth = truth.assign(as_of=pd.to_datetime(truth["as_of"]))
    complete = truth["as_of"] + HORIZON <= events["ts"].max()
    quarterly = truth["as_of"].dt.month.isin([1, 4, 7, 10])
    rows = _observed(truth.loc[complete & quarterly], events, outcome)
    by_month = rows.groupby("as_of").agg(
        y=("y", "sum"), p=("p", "sum"), var=("p", lambda p: float((p * (1 - p)).sum()))
    )
    z = (by_month["y"] - by_month["p"]) / np.sqrt(by_month["var"])
    assert (z.abs() < 4).all(), z
    overall = (rows["y"].sum() - rows["p"].sum()) / np.sqrt((rows["p"] * (1 - rows["p"])).sum())
    assert abs(overall) < 4, (overall, rows["y"].mean(), rows["p"].mean())


def test_truth_separates_what_happens(tables):
    """The oracle is informative (and not perfect): AUC well above chance."""
    from sklearn.metrics import roc_auc_score

    events, truth = tables["events"], tables["truth"]
    truth = truth.assign(as_of=pd.to_datetime(truth["as_of"]))
    truth = truth.loc[truth["as_of"] + HORIZON <= events["ts"].max()]
    for outcome in ("relapse", "loss_of_contact"):
        rows = _observed(truth, events, outcome)
        assert 0.7 < roc_auc_score(rows["y"], rows["p"]) < 0.99
