"""history() renders action texts and evidence only where they are shown.

The lifecycle shows a text where an action opens (and on changes of a date the action
fired); the backtest only counts. Rendering every fired (account, date) pair is the
costliest part of assembling actions, so a history renders nothing until asked, and the
lifecycle renders only what its changes and states show. These tests check that fewer rows
are rendered, and that what is shown is exactly what a one-date ``evaluate`` shows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.datasets import sample
from healthrules.history import history
from healthrules.history.lifecycle import _rules_with_flags, empty_state, step
from healthrules.history.snapshots import History

B2B = Path(__file__).resolve().parents[1] / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"


@pytest.fixture(scope="module")
def case() -> tuple[hr.Plan, sample, History]:  # type: ignore[valid-type]
    s = sample(60, days=300)
    plan = hr.compile(hr.load(B2B))
    h = history(plan, s.events, s.accounts, s.as_of - dt.timedelta(weeks=12), s.as_of, "1w")
    return plan, s, h


def _replay_with_every_text(h: History) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The lifecycle as it was computed before: every fired row rendered, texts stepped."""
    key = h.account_key
    rules = _rules_with_flags(h.plan)
    state = empty_state(key, h.attributes.schema[key])
    assert h.signals is not None
    changes, states = [], []
    for d in h.dates:
        sig = h.signals.filter(pl.col("as_of") == d).drop("as_of")
        state, ch = step(state, sig, d, rules, key=key,
                         stages=h.stages.filter(pl.col("as_of") == d).drop("as_of"),
                         fired=h.actions.filter(pl.col("as_of") == d).drop("as_of"))
        day = pl.lit(d, pl.Date).alias("as_of")
        changes.append(ch.select(day, pl.all()))
        states.append(state.select(day, pl.all()))
    return pl.concat(changes), pl.concat(states)


def test_history_renders_nothing_until_asked(case) -> None:  # type: ignore[no-untyped-def]
    _, _, h = case
    fresh = History(**{f: getattr(h, f) for f in h.__dataclass_fields__})
    # a new History over the same fired rows: reading the frames and the repr renders nothing
    before = fresh.fired.rendered_rows
    assert "actions=" in repr(fresh)
    assert fresh.scores.height and fresh.fired.index.height > 0
    assert fresh.fired.rendered_rows == before


def test_lifecycle_renders_only_opened_or_changed_rows(case) -> None:  # type: ignore[no-untyped-def]
    plan, s, h = case
    index = h.fired.index
    fired_rows = index["__hk"].n_unique()
    start = h.fired.rendered_rows
    lc = h.lifecycle
    rendered = h.fired.rendered_rows - start
    shown = lc.changes.filter(pl.col("text").is_not_null())
    assert shown.height > 0
    # at most one rendered row per shown change (a change may reuse an earlier opening's)
    assert 0 < rendered <= shown.select("as_of", h.account_key).unique().height
    assert rendered * 3 < fired_rows, (rendered, fired_rows)
    # the texts are those of a one-date evaluation at the date the action opened
    opened = lc.changes.filter(pl.col("change") == "opened")
    checked = 0
    for d in opened["as_of"].unique().sort().to_list():
        ev = hr.evaluate(plan, s.events, s.accounts, d)
        mine = opened.filter(pl.col("as_of") == d).select(h.account_key, "roadmap",
                                                          "action_id", "text")
        theirs = ev.actions.select(h.account_key, "roadmap", "action_id",
                                   pl.col("text").alias("expected"))
        both = mine.join(theirs, on=[h.account_key, "roadmap", "action_id"], how="left")
        assert both["expected"].null_count() == 0
        assert both["text"].to_list() == both["expected"].to_list()
        checked += both.height
    assert checked == opened.height > 0


def test_lifecycle_means_what_it_meant(case) -> None:  # type: ignore[no-untyped-def]
    """Changes and states equal those of a replay that renders every fired row first."""
    _, _, h = case
    changes, states = _replay_with_every_text(h)
    assert_frame_equal(h.lifecycle.changes, changes)
    # the order of a state's rows is that of a join (not fixed): compare them sorted
    order = ["as_of", h.account_key, "roadmap", "action_id"]
    assert_frame_equal(h.lifecycle.states.sort(order), states.sort(order))
    assert h.lifecycle.states["text"].null_count() < h.lifecycle.states.height


def test_actions_and_at_render_what_they_show(case) -> None:  # type: ignore[no-untyped-def]
    plan, s, h = case
    fresh = History(**{f: getattr(h, f) for f in h.__dataclass_fields__})
    d = fresh.dates[5]
    before = fresh.fired.rendered_rows
    one = fresh.at(d)
    at_rows = fresh.fired.index.filter(pl.col("as_of") == d)["__hk"].n_unique()
    assert fresh.fired.rendered_rows - before == at_rows
    ev = hr.evaluate(plan, s.events, s.accounts, d)
    assert_frame_equal(one.actions, ev.actions)
    # every fired row, rendered once, when the whole frame is read
    all_rows = fresh.fired.index["__hk"].n_unique()
    actions = fresh.actions
    assert fresh.fired.rendered_rows - before == at_rows + all_rows
    assert actions.height == fresh.fired.index.height
    assert_frame_equal(actions.filter(pl.col("as_of") == d).drop("as_of"), ev.actions)
    assert_frame_equal(actions.drop("text", "evidence"),
                       fresh.fired.index.drop("__hk", "__order"))


def test_a_pack_in_chunks_renders_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tracks (two roadmap programs) and a grid split into many chunks: the fired rows
    of every chunk and roadmap are rendered as one grid would render them."""
    from healthrules.history import snapshots
    from test_history import _random_case

    base, events, accounts, as_of = _random_case(99, "UTC")
    r1 = dict(base[0], id="young", applies_to="days_since(start) < 90")
    r2 = dict(base[0], id="old", applies_to="plan == 'pro'")
    plan = hr.compile([hr.Roadmap.model_validate(r1), hr.Roadmap.model_validate(r2)])
    start = as_of - dt.timedelta(days=70)
    whole = history(plan, events, accounts, start, as_of, every="1w")
    monkeypatch.setattr(snapshots, "MAX_GRID_ROWS", 7)
    chunked = history(plan, events, accounts, start, as_of, every="1w")
    assert set(whole.actions["roadmap"]) == {"young", "old"}
    assert_frame_equal(chunked.actions, whole.actions)
    assert_frame_equal(chunked.lifecycle.changes, whole.lifecycle.changes)
    assert chunked.lifecycle.changes.filter(pl.col("change") == "opened").height > 0
    assert_frame_equal(chunked.fired.index, whole.fired.index)
