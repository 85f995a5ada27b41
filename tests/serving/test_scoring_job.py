"""The daily scoring job: what it stores, alerts, ranks, change, reruns, a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from serving.api.schemas import Explanation, ListItem
from serving.bands import band_of
from serving.daily.job import score_date
from tests.serving.fakes import fake_champions

ROOT = Path(__file__).resolve().parents[2]


def _scores(engine, run_id=None):
    with engine.connect() as conn:
        if run_id is None:
            run_id = conn.execute(
                sa.text("SELECT id FROM score_runs WHERE status='published' ORDER BY as_of DESC")
            ).scalar()
        rows = (
            conn.execute(
                sa.text("SELECT * FROM scores WHERE run_id = :r ORDER BY outcome, person_id"),
                {"r": run_id},
            )
            .mappings()
            .all()
        )
    return run_id, rows


def test_cohort_alerts_and_cohort_flags(scored):
    run_id, rows = _scores(scored.engine)
    relapse = {r["person_id"]: r for r in rows if r["outcome"] == "relapse"}
    # p-06 lost contact before the date: not in the cohort, never listed.
    assert set(relapse) == {"p-01", "p-02", "p-03", "p-04", "p-05", "p-07", "p-08", "p-09"}
    with scored.engine.connect() as conn:
        kinds = {
            (pid, kind)
            for pid, kind in conn.execute(
                sa.text("SELECT person_id, kind FROM alerts WHERE run_id = :r"), {"r": run_id}
            )
        }
    assert kinds == {
        ("p-01", "positive_test"),
        ("p-02", "overdue_check_in"),
        ("p-02", "overdue_test"),
        ("p-03", "medicine_purchase"),
        ("p-04", "transfer_no_worker"),
        ("p-05", "refused_test"),
        ("p-08", "overdue_check_in"),  # month 2: check-ins every 14 days
    }
    items = {pid: orjson.loads(r["item"]) for pid, r in relapse.items()}
    assert items["p-07"]["cohorts"] == ["agreement_ending"]
    assert items["p-08"]["cohorts"] == ["first_90_days"]
    assert items["p-04"]["cohorts"] == ["transferred_in_recently"]
    assert items["p-02"]["alerts"] == ["overdue_check_in", "overdue_test"]


def test_ranks_bands_change_and_the_stored_explanation(scored):
    run_id, rows = _scores(scored.engine)
    prev_id = run_id - 1
    _, prev_rows = _scores(scored.engine, prev_id)
    before = {(r["outcome"], r["person_id"]): r["p"] for r in prev_rows}
    for outcome in ("relapse", "loss_of_contact"):
        mine = [r for r in rows if r["outcome"] == outcome]
        for worker in {r["worker_id"] for r in mine}:
            caseload = sorted(
                (r for r in mine if r["worker_id"] == worker),
                key=lambda r: (-r["p"], r["person_id"]),
            )
            assert [r["rank_caseload"] for r in caseload] == list(range(1, len(caseload) + 1))
        for r in mine:
            assert r["band"] == band_of(outcome, r["p"])
            assert r["change"] == pytest.approx(
                r["p"] - before[(outcome, r["person_id"])], abs=2e-6
            )
            item = ListItem.model_validate_json(r["item"])
            with scored.engine.connect() as conn:
                body = conn.execute(
                    sa.text(
                        "SELECT body FROM explanations WHERE run_id=:r AND person_id=:p "
                        "AND outcome=:o"
                    ),
                    {"r": run_id, "p": r["person_id"], "o": outcome},
                ).scalar_one()
            expl = Explanation.model_validate({"run_id": run_id, "as_of": None, **json.loads(body)})
            assert item.top_driver == expl.drivers[0]
            assert (item.p, item.band, item.model) == (expl.p, expl.band, expl.model)
            assert len(expl.drivers) == 5


def test_rerun_replaces_the_date_cleanly(fresh):
    with fresh.engine.connect() as conn:
        before = conn.execute(
            sa.text(
                "SELECT count(*) FROM scores s JOIN score_runs r "
                "ON r.id = s.run_id WHERE r.status='published'"
            )
        ).scalar()
    summary = score_date(fresh.engine, date(2025, 6, 1), fake_champions(version="2"))
    assert summary.replaced
    with fresh.engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT as_of, status FROM score_runs ORDER BY id")).all()
        after = conn.execute(
            sa.text(
                "SELECT count(*) FROM scores s JOIN score_runs r "
                "ON r.id = s.run_id WHERE r.status='published'"
            )
        ).scalar()
        versions = set(
            conn.execute(
                sa.text("SELECT model_version FROM scores WHERE run_id = :r"), {"r": summary.run_id}
            ).scalars()
        )
    assert [str(s) for _, s in runs] == ["published", "replaced", "published"]
    assert sum(1 for d, s in runs if str(d) == "2025-06-01" and s == "published") == 1
    assert before == after
    assert versions == {"2"}


KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from datetime import date
    sys.path.insert(0, {root!r})
    from features.store import make_engine
    from serving.daily.job import score_date
    from tests.serving.fakes import fake_champions
    import serving.daily.publish as publish
    publish.BATCH = 2  # many small batches, so the kill lands mid-write

    def progress(message):
        if message.startswith("stored"):
            open({flag!r}, "w").write(message)
            time.sleep(60)

    score_date(make_engine({url!r}), date(2025, 6, 1), fake_champions(version="9"),
               progress=progress)
    """
)


@pytest.mark.slow
def test_a_killed_run_leaves_the_published_list_untouched(fresh, tmp_path):
    def snapshot():
        with fresh.engine.connect() as conn:
            return (
                conn.execute(sa.text("SELECT id, as_of, status FROM score_runs ORDER BY id")).all(),
                conn.execute(sa.text("SELECT count(*) FROM scores")).scalar(),
                conn.execute(sa.text("SELECT count(*) FROM explanations")).scalar(),
                conn.execute(sa.text("SELECT count(*) FROM alerts")).scalar(),
            )

    before = snapshot()
    flag = tmp_path / "writing"
    script = KILL_SCRIPT.format(root=str(ROOT), flag=str(flag), url=fresh.url)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.time() + 60
    while not flag.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert flag.exists(), "the run never started writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    fresh.engine.dispose()
    assert snapshot() == before
    with fresh.engine.connect() as conn:
        versions = set(conn.execute(sa.text("SELECT model_version FROM scores")).scalars())
    assert "9" not in versions
    # and the next run goes through
    assert score_date(fresh.engine, date(2025, 6, 1), fake_champions(version="3")).replaced
