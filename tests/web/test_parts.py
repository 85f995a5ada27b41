"""The small pure parts of the pages: chart geometry, filters, redirects, words."""

from __future__ import annotations

import re
import string
from datetime import date
from pathlib import Path

from starlette.datastructures import QueryParams

from serving.web import charts, words
from serving.web.i18n import MESSAGES
from serving.web.listing import parse_filters
from serving.web.render import local_path, number
from serving.web.supervision import driver_kind


def test_trend_puts_both_outcomes_on_one_scale_with_dates_at_the_ends():
    pts = [
        {"as_of": date(2025, 5, 1), "outcome": "relapse", "p": 0.3},
        {"as_of": date(2025, 6, 1), "outcome": "relapse", "p": 0.1},
        {"as_of": date(2025, 6, 1), "outcome": "loss_of_contact", "p": 0.02},
    ]
    tr = charts.trend(pts)
    assert tr is not None and [s.outcome for s in tr.series] == ["relapse", "loss_of_contact"]
    (x0, y0, _, _), (x1, y1, _, _) = tr.series[0].markers
    assert x0 == tr.left and x1 == tr.width - tr.right and y0 < y1  # higher p is higher up
    assert [label for _, label in tr.x_labels] == ["2025-05-01", "2025-06-01"]
    assert tr.y_ticks[-1][1] == "30%"  # the smallest round cap above the largest p
    assert charts.trend([]) is None
    one = charts.trend(pts[1:2])
    assert (
        one is not None
        and one.series[0].markers[0][0] == one.left + (one.width - one.left - one.right) / 2
    )


def test_driver_bars_share_a_scale_and_point_the_right_way():
    bars = charts.driver_bars([{"contribution": 1.0}, {"contribution": -0.5}, {"contribution": 0}])
    assert [b.raises for b in bars] == [True, False, False]
    assert bars[0].x == 100 and bars[0].width == 98
    assert bars[1].x + bars[1].width == 100 and bars[1].width == 49
    assert bars[2].width == 2  # a zero contribution still shows a sliver


def test_filters_fall_back_to_defaults_on_unknown_values():
    f = parse_filters(QueryParams("outcome=x&band=high&band=bogus&band=low&alert=no&cohort=z"))
    assert (f.sort, f.bands, f.alert, f.cohort) == ("priority", ("low", "high"), "", "")
    assert f.query() == "band=low&band=high"  # who first today is the default, not in links
    g = parse_filters(QueryParams("outcome=loss_of_contact&alert=any&cohort=first_90_days"))
    assert g.query(view="print") == (
        "sort=loss_of_contact&alert=any&cohort=first_90_days&view=print"
    )
    assert parse_filters(QueryParams("sort=relapse&outcome=loss_of_contact")).sort == "relapse"
    assert parse_filters(QueryParams("sort=bogus")).sort == "priority"


def test_redirects_stay_on_this_site():
    assert local_path("/people/p-1?x=1", "/") == "/people/p-1?x=1"
    for bad in ("//evil", "https://evil", "evil", "/\\evil", None, ""):
        assert local_path(bad, "/home") == "/home"


def test_numbers_and_words():
    assert (number(3.0), number(2.25), number(None)) == ("3", "2.2", "")
    assert words.word(words.EVENT_TYPES, "home_visit", "zh") == "家访"
    assert words.word(words.EVENT_TYPES, "new_type", "zh") == "new_type"
    assert words.plan_item("home_visit", "en") == "home visit"
    assert words.spec_label("checkins_missed", "zh") == "漏报到若干次"
    assert words.spec_label("employed_now", "zh", value_is_zero=True) == "目前没有就业"


def test_group_keys_keep_a_categorys_choice_and_an_off_state():
    local = {
        "feature": "household",
        "value": None,
        "sentence_zh": "本地户籍，降低风险",
        "sentence_en": "local household registration, lowers the risk",
    }
    other = {**local, "sentence_zh": "非本地户籍，推高风险", "sentence_en": "non-local, raises"}
    assert driver_kind(local)[1] == "本地户籍" and driver_kind(other)[1] == "非本地户籍"
    assert driver_kind(local)[0] != driver_kind(other)[0]
    jobless = {"feature": "employed_now", "value": 0.0, "sentence_zh": "", "sentence_en": ""}
    assert driver_kind(jobless)[1:] == ("目前没有就业", "not currently employed")
    missed = {"feature": "checkins_missed_90d", "value": 2.0, "sentence_zh": "", "sentence_en": ""}
    assert driver_kind(missed) == ("checkins_missed", "漏报到若干次", "missed several check-ins")


def test_every_message_exists_in_both_languages_with_the_same_placeholders():
    fields = string.Formatter()
    for key, (zh, en) in MESSAGES.items():
        assert zh and en, key
        names = [{f for _, f, _, _ in fields.parse(text) if f} for text in (zh, en)]
        assert names[0] == names[1], key
    used = set()
    for path in (Path(words.__file__).parent / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*'([a-z_0-9]+)'[,)]""", path.read_text("utf-8")))
    assert used and used - set(MESSAGES) == set()
