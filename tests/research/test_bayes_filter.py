"""The quality diagnostic's Bayes filter: a posterior of the hidden state, honest in time.

It reads only the recorded history, so its answers must (1) be probabilities
that match how often the hidden state really holds, (2) separate the people
who use or have gone from the rest, and (3) not move when events recorded at
or after as_of are removed (the features' time rule).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from research.bayes_filter import filter_posteriors
from simulator import simulate
from simulator.hidden import hidden_state

pytestmark = pytest.mark.slow

START, END, PERSONS, SEED = date(2023, 1, 1), date(2023, 12, 31), 800, 17


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    out = tmp_path_factory.mktemp("district")
    simulate(PERSONS, START, END, seed=SEED, out=out)
    posterior = filter_posteriors(out, PERSONS, START, END, SEED)
    hidden = hidden_state(PERSONS, START, END, SEED)
    return out, posterior, hidden.merge(posterior, on=["person_id", "as_of"])


def test_posteriors_are_calibrated_probabilities_of_the_hidden_state(district):
    _, posterior, joined = district
    total = posterior["f_using"] + posterior["f_absconded"]
    assert posterior[["f_using", "f_absconded"]].ge(0).all().all() and total.le(1 + 1e-9).all()
    assert len(joined) > 0.9 * len(posterior)
    in_contact = joined[~joined["absconded"]]
    assert in_contact["f_using"].mean() == pytest.approx(in_contact["using"].mean(), rel=0.25)
    assert joined["f_absconded"].mean() == pytest.approx(joined["absconded"].mean(), rel=0.5)


def test_posteriors_separate_who_uses_and_who_has_gone(district):
    _, _, joined = district
    in_contact = joined[~joined["absconded"]]
    assert roc_auc_score(in_contact["using"], in_contact["f_using"]) > 0.9
    assert roc_auc_score(joined["absconded"], joined["f_absconded"]) > 0.85


def test_posterior_at_as_of_ignores_events_recorded_from_as_of_on(district, tmp_path):
    out, posterior, _ = district
    as_of = pd.Timestamp("2023-07-01")
    events = pd.read_parquet(out / "events.parquet")
    known = events[events["recorded_at"] < as_of]
    assert len(known) < len(events)
    known.to_parquet(tmp_path / "events.parquet")
    cut = filter_posteriors(tmp_path, PERSONS, START, END, SEED)
    a = posterior[posterior["as_of"] == as_of].reset_index(drop=True)
    b = cut[cut["as_of"] == as_of].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    later = posterior[posterior["as_of"] > as_of].set_index(["person_id", "as_of"])
    later_cut = cut[cut["as_of"] > as_of].set_index(["person_id", "as_of"])
    common = later.index.intersection(later_cut.index)
    assert not np.allclose(later.loc[common, "f_using"], later_cut.loc[common, "f_using"])
