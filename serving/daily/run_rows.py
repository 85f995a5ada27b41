"""The daily run's rows, rendered chunk by chunk of persons (the scoring job's writing half).

Contract: :class:`RunRows` takes what :func:`serving.daily.job.score_date`
computed for a date — the cohort (``who``), each outcome's probabilities and
top drivers, the previous run's scores, alert and cohort bit masks, the
champions and the feature matrix — and :meth:`RunRows.chunk` renders persons
``[lo, hi)`` into the rows of three tables:

* ``scores``: the list row (person, worker, town, p, band, ranks in caseload,
  town and district with ties broken by person_id, change since the previous
  run, alert and cohort bits, top spec, model version) and its list item as
  pre-serialised JSON;
* ``explanations``: the explanation body as JSON text;
* ``feature_rows``: the feature vector as bytes (for what-if).

JSON texts are written from memoised pieces (workers, towns, alert and cohort
lists, band words) and equal ``json_text`` of the dicts the API would build
(``tests/serving/test_scoring_job.py``, ``test_batch_explain.py``). A chunk
bounds the text held at once and, for a champion without the batch path, its
Python driver objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.champion import BatchExplanation, ChampionLike
from models.explain import Top
from serving.bands import band_words, bands_of
from serving.explanations import (
    TOP_K,
    BodyWriter,
    body_of,
    json_numbers,
    json_text,
    model_ref,
    round_like_python,
    top_spec,
)
from serving.flags import COHORT_BITS

#: Persons rendered and written at a time.
CHUNK = 20_000

Rendered = tuple[str, str, str | None]  # (body without "{", top driver JSON, top spec)
Row = tuple[Any, ...]


def ranks(p: np.ndarray, groups: np.ndarray, tie: np.ndarray) -> list[int]:
    """1-based rank within each group by p descending, ties by ``tie`` (person_id order)."""
    order = np.lexsort((tie, -p, groups))
    g = groups[order]
    first = np.ones(len(g), bool)
    first[1:] = g[1:] != g[:-1]
    starts = np.flatnonzero(first)
    run = np.repeat(starts, np.diff(np.append(starts, len(g))))
    out = np.empty(len(g), np.int64)
    out[order] = np.arange(len(g)) - run + 1
    return out.tolist()


def group_codes(*columns: pd.Series) -> np.ndarray:
    """One integer code per distinct value (or tuple of values) of the columns."""
    key = columns[0] if len(columns) == 1 else pd.MultiIndex.from_arrays(columns)
    return np.asarray(pd.factorize(key, use_na_sentinel=False)[0], dtype=np.int64)


def _rendered(body: dict[str, Any]) -> Rendered:
    """(body JSON without its opening brace, first driver's JSON, top spec) of a body dict."""
    first = json_text(body["drivers"][0]) if body["drivers"] else "null"
    return json_text(body)[1:], first, top_spec(body)


@dataclass
class _Outcome:
    """One outcome's scores for the whole run, and how to render its explanations."""

    champion: ChampionLike
    p: list[float]  # shown (rounded to 6 places)
    p_array: np.ndarray
    bands: list[int]
    rank_caseload: list[int]
    rank_town: list[int]
    rank_district: list[int]
    old_p: np.ndarray  # the previous run's p, NaN where not scored then
    old_band: list[int]  # -1 where not scored then
    batch: BatchExplanation | None  # batch path: the top drivers as arrays
    X: np.ndarray | None  # otherwise: the rows to explain chunk by chunk
    writer: BodyWriter | None
    others: list[str]
    version: str
    model: dict[str, Any]


class RunRows:
    """The run's rows, one chunk of persons at a time (see the module docstring)."""

    def __init__(
        self,
        who: pd.DataFrame,
        results: Mapping[str, tuple[np.ndarray, BatchExplanation | None, np.ndarray | None]],
        previous: Mapping[str, Mapping[str, tuple[float, int]]],
        masks: np.ndarray,
        cohorts: np.ndarray,
        kinds: Mapping[str, list[str]],
        champions: Mapping[str, ChampionLike],
        matrix: np.ndarray,
    ) -> None:
        n = len(who)
        self.n, self.matrix, self.kinds = n, matrix, kinds
        self.pids = pids = who["person_id"].astype(str).tolist()
        self.people = list(
            zip(
                pids,
                who["worker_id"].tolist(),
                who["district"].tolist(),
                who["town"].tolist(),
                strict=True,
            )
        )
        caseload = group_codes(who["worker_id"])
        town = group_codes(who["district"], who["town"])
        district = group_codes(who["district"])
        self.caseload_size = np.bincount(caseload)[caseload].tolist()
        self.town_size = np.bincount(town)[town].tolist()
        # person_id order (code points, as Python compares strings) breaks ties in ranks
        tie = np.empty(n, np.int64)
        tie[np.argsort(np.array(pids, dtype=str), kind="stable")] = np.arange(n)
        names = {bit: name for name, bit in COHORT_BITS.items()}
        self.cohort_lists = [[nm for b, nm in names.items() if c & b] for c in cohorts.tolist()]
        self.cohort_ints = cohorts.tolist()
        self.mask_list = masks.tolist()
        self.bands_json = {b: json_text(band_words(b)) for b in range(1, 5)}
        self.text: dict[object, str] = {}  # JSON of repeated values
        self.outcomes: dict[str, _Outcome] = {}
        for outcome, (p, batch, X) in results.items():
            champion = champions[outcome]
            shown = [round(x, 6) for x in p.tolist()]
            p_array = np.asarray(shown, dtype=np.float64)
            before = previous.get(outcome, {})
            found = [before.get(pid) for pid in pids]
            self.outcomes[outcome] = _Outcome(
                champion=champion,
                p=shown,
                p_array=p_array,
                bands=bands_of(outcome, p).tolist(),
                rank_caseload=ranks(p_array, caseload, tie),
                rank_town=ranks(p_array, town, tie),
                rank_district=ranks(p_array, district, tie),
                old_p=np.array([np.nan if f is None else f[0] for f in found], np.float64),
                old_band=[-1 if f is None else int(f[1]) for f in found],
                batch=batch,
                X=X,
                writer=BodyWriter(champion, batch.explainer) if batch is not None else None,
                others=[o for o in results if o != outcome],
                version=str(champion.version),
                model=model_ref(champion),
            )

    def cached(self, value: Any, key: object = None) -> str:
        """JSON text of a value that repeats across persons (memoised by ``key``)."""
        k = value if key is None else key
        found = self.text.get(k)
        if found is None:
            found = self.text[k] = json_text(value)
        return found

    def chunk(self, lo: int, hi: int) -> tuple[list[Row], list[Row], list[Row]]:
        """(scores, explanations, feature_rows) rows of persons ``[lo, hi)``."""
        pids, cached = self.pids[lo:hi], self.cached
        j_pids = [json_text(pid) for pid in pids]
        heads = [
            f'{{"person_id":{j_pid},"worker_id":{cached(worker)},'
            f'"district":{cached(dist)},"town":{cached(twn)},"outcome":'
            for j_pid, (_, worker, dist, twn) in zip(j_pids, self.people[lo:hi], strict=True)
        ]
        flags = [  # alerts and cohorts, the same for both outcomes
            f'"alerts":{cached(self.kinds.get(pid, []), ("alerts", *self.kinds.get(pid, ())))},'
            f'"cohorts":{cached(self.cohort_lists[i], ("cohorts", self.cohort_ints[i]))},'
            for i, pid in zip(range(lo, hi), pids, strict=True)
        ]
        p_text = {o: json_numbers(s.p_array[lo:hi]) for o, s in self.outcomes.items()}
        band_text = {
            o: [self.bands_json[b] for b in s.bands[lo:hi]] for o, s in self.outcomes.items()
        }
        scores: list[Row] = []
        explanations: list[Row] = []
        for outcome, s in self.outcomes.items():
            rendered = self._render(s, lo, hi)
            change = round_like_python(s.p_array[lo:hi] - s.old_p[lo:hi], 6)
            other = [
                ",".join(
                    f'{{"outcome":{cached(o)},"p":{p_text[o][i]},"band":{band_text[o][i]}}}'
                    for o in s.others
                )
                for i in range(hi - lo)
            ]
            items = self._items(
                outcome, s, lo, hi, heads, flags, rendered, p_text, band_text, change, other
            )
            changes = [None if c != c else c for c in change.tolist()]
            scores += [
                (outcome, *who_i, p, b, rc, rt, rd, ch, m, co, r[2], s.version, item)
                for who_i, p, b, rc, rt, rd, ch, m, co, r, item in zip(
                    self.people[lo:hi],
                    s.p[lo:hi],
                    s.bands[lo:hi],
                    s.rank_caseload[lo:hi],
                    s.rank_town[lo:hi],
                    s.rank_district[lo:hi],
                    changes,
                    self.mask_list[lo:hi],
                    self.cohort_ints[lo:hi],
                    rendered,
                    items,
                    strict=True,
                )
            ]
            explanations += [
                (pid, outcome, f'{{"person_id":{jp},{r[0]}')
                for pid, jp, r in zip(pids, j_pids, rendered, strict=True)
            ]
        vectors = [(self.pids[i], self.matrix[i].tobytes()) for i in range(lo, hi)]
        return scores, explanations, vectors

    def _render(self, s: _Outcome, lo: int, hi: int) -> list[Rendered]:
        """Each person's explanation body: vectorised, or through ``body_of`` without a batch."""
        if s.writer is not None and s.batch is not None:
            top = s.batch.top
            return s.writer.render(
                s.p[lo:hi],
                s.bands[lo:hi],
                Top(
                    top.units[lo:hi],
                    top.contributions[lo:hi],
                    top.key_unit[lo:hi],
                    top.key_value[lo:hi],
                ),
            )
        assert s.X is not None
        drivers = s.champion.explain(s.X[lo:hi], top_k=TOP_K)
        return [
            _rendered(body_of(s.champion, s.p[i], s.bands[i], drivers[i - lo], s.model))
            for i in range(lo, hi)
        ]

    def _items(
        self,
        outcome: str,
        s: _Outcome,
        lo: int,
        hi: int,
        heads: list[str],
        flags: list[str],
        rendered: list[Rendered],
        p_text: Mapping[str, list[str]],
        band_text: Mapping[str, list[str]],
        change: np.ndarray,
        other: list[str],
    ) -> list[str]:
        """The list items (one JSON object per person) of one outcome."""
        change_text = json_numbers(change)  # null where there was no previous score
        previous_band = ["null" if b < 0 else str(b) for b in s.old_band[lo:hi]]
        j_outcome, j_model = json_text(outcome), json_text(s.model)
        return [
            f'{head}{j_outcome},"p":{pt},"band":{bt},"rank_caseload":{rc},'
            f'"caseload_size":{cs},"rank_town":{rt},"town_size":{ts},"change":{ct},'
            f'"previous_band":{pb},"top_driver":{r[1]},{fl}'
            f'"other_outcomes":[{ot}],"model":{j_model}}}'
            for head, pt, bt, rc, cs, rt, ts, ct, pb, r, fl, ot in zip(
                heads,
                p_text[outcome],
                band_text[outcome],
                s.rank_caseload[lo:hi],
                self.caseload_size[lo:hi],
                s.rank_town[lo:hi],
                self.town_size[lo:hi],
                change_text,
                previous_band,
                rendered,
                flags,
                other,
                strict=True,
            )
        ]
