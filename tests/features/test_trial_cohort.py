"""The trial-cohort fixture: a district in a different shape, deterministic and learnable."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from features.mapping import apply_mapping, load_mapping
from features.validate import validate_events, validate_persons
from tests.fixtures.trial_cohort import MAPPING, PROGRAMME_DAYS, make_trial_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_trial_cohort()


@pytest.fixture(scope="module")
def contract(cohort):
    """The cohort mapped and validated: (persons, events) in canonical form."""
    persons, events, report = apply_mapping(
        load_mapping(MAPPING), cohort.patients, cohort.visits, "patients.csv", "visits.csv"
    )
    assert report.unmapped == [] and persons is not None and events is not None
    vp = validate_persons(persons)
    ve = validate_events(events, vp.good["person_id"])
    assert vp.rejections.empty and ve.rejections.empty
    return vp.good, ve.good


def test_same_arguments_same_frames():
    a, b = make_trial_cohort(persons=150, seed=5), make_trial_cohort(persons=150, seed=5)
    pd.testing.assert_frame_equal(a.patients, b.patients)
    pd.testing.assert_frame_equal(a.visits, b.visits)
    assert not make_trial_cohort(persons=150, seed=6).visits.equals(a.visits)


def test_its_own_shape(cohort):
    assert {"patid", "enrol_date", "drug", "resid"} <= set(cohort.patients.columns)
    assert list(cohort.visits.columns) == [
        "recid",
        "patid",
        "visit_date",
        "entered",
        "code",
        "res",
        "origin",
    ]
    assert set(cohort.patients["sex"]) == {"1", "2"}
    assert set(cohort.visits["code"]) == {"VISIT", "URINE", "COUNS", "EXIT"}
    assert set(cohort.visits["res"]) == {
        "ATT",
        "DNA",
        "POS",
        "NEG",
        "MISS",
        "COMP",
        "DROP",
        "JAIL",
        "",
    }
    assert cohort.patients["patid"].str.fullmatch(r"T\d{4}").all()
    assert cohort.visits["recid"].is_unique


def test_a_24_week_weekly_cohort_with_no_lost_contact(contract):
    persons, events = contract
    assert len(persons) == 1000
    assert ((persons["program_end"] - persons["program_start"]).dt.days == PROGRAMME_DAYS).all()
    span = persons["program_start"].max() - persons["program_start"].min()
    assert 650 <= span.days <= 730
    assert "lost_contact" not in set(events["type"])
    visits = events[events["type"] == "check_in"].merge(persons, on="person_id")
    day = (visits["ts"].dt.normalize() - visits["program_start"]).dt.days
    assert (day % 7 == 0).all() and day.between(0, PROGRAMME_DAYS - 1).all()
    # A urine sample at every visit (a lab result entered after the cutoff is not there yet).
    tests = events[events["type"] == "urine_test"]
    settled = events["recorded_at"].max() - pd.Timedelta(days=3)
    assert (tests["ts"] < settled).sum() == (visits["ts"] < settled).sum()
    exits = events[events["type"] == "program_exit"]["result"].value_counts()
    assert 20 <= exits["violation"] <= 120 and 10 <= exits["custody"] <= 80
    assert exits["completed"] > 500
    # The data stops at the end of enrolment: the last enrolled are cut mid-programme.
    assert events["recorded_at"].max() < pd.Timestamp(date(2024, 1, 3))
    cut = persons["program_end"] > events["recorded_at"].max()
    assert 0.15 < cut.mean() < 0.3


def test_relapse_depends_on_covariates_and_recent_positives(contract):
    """A plain logistic model on a few observable inputs ranks later positives well."""
    persons, events = contract
    tests = events[events["type"] == "urine_test"]
    bad = tests[tests["result"].isin(["positive", "refused"])]
    exits = events[events["type"] == "program_exit"].groupby("person_id")["ts"].min()
    cutoff = events["recorded_at"].max()
    rows = []
    for day in (28, 56):
        frame = persons.assign(as_of=persons["program_start"] + pd.Timedelta(days=day))
        frame = frame[frame["as_of"] + pd.Timedelta(days=90) <= cutoff]
        frame = frame[~(frame["person_id"].map(exits) < frame["as_of"])]
        joined = bad.merge(frame[["person_id", "as_of"]], on="person_id")
        before = joined[
            (joined["recorded_at"] < joined["as_of"])
            & (joined["ts"] >= joined["as_of"] - pd.Timedelta(days=28))
        ]
        after = joined[
            (joined["ts"] >= joined["as_of"])
            & (joined["ts"] < joined["as_of"] + pd.Timedelta(days=90))
        ]
        frame = frame.assign(
            recent=frame["person_id"].map(before.groupby("person_id").size()).fillna(0),
            label=frame["person_id"].isin(after["person_id"]).astype(int),
        )
        rows.append(frame)
    data = pd.concat(rows, ignore_index=True)
    x = pd.DataFrame(
        {
            "recent": data["recent"],
            "prior": data["prior_compulsory_detox"].astype(float),
            "non_local": data["household"] == "non_local",
            "family": data["living"] == "with_family",
            "heroin": data["primary_drug"] == "heroin",
            "years_used": data["program_start"].dt.year - data["first_use_year"].astype(float),
        }
    ).astype(float)
    train = (data["person_id"].str[1:].astype(int) % 2 == 0).to_numpy()
    assert 0.25 < data["label"].mean() < 0.6
    model = LogisticRegression(max_iter=1000).fit(x[train], data["label"][train])
    auc = roc_auc_score(data["label"][~train], model.predict_proba(x[~train])[:, 1])
    assert auc > 0.65, auc
    assert np.corrcoef(x["recent"], data["label"])[0, 1] > 0.2
