"""backtest(): every figure checked on a small case computed by hand.

Six accounts renew on 2026-06-30; their score is read 90 days before (2026-04-01). The score is
the band score of one indicator, logins in the last 30 days: red below 2 (score 0), yellow 2-4
(50), green from 5 (100); score bands red < 40 <= yellow < 70 <= green.

========= ======= ===== ============================== =============== =================
account   outcome ARR   events                         at 2026-04-01   weekly snapshots
========= ======= ===== ============================== =============== =================
a1        churned 100   none                           0 logins, red   red from 03-30
a2        churned 200   3 on 03-20                     3, yellow       red from 04-20
a3        renewed 300   none                           0, red          red from 03-30
a4        renewed 400   5 on 03-20, daily from 04-02   5, green        green
a5        renewed 500   6 on 03-20, daily from 04-02   6, green        green
a6        renewed 600   3 on 03-20, daily from 04-02   3, yellow       green
========= ======= ===== ============================== =============== =================
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.cli import main
from healthrules.history.backtest import backtest

RENEWAL = dt.date(2026, 6, 30)
ROADMAP_YAML = """
id: bt
goal: renew
data: {events: {user: null}}
indicators:
  - id: logins
    family: process
    aggregate: count
    window: 30d
    bands:
      levels:
        - {name: red, lt: 2}
        - {name: yellow, ge: 2, lt: 5}
        - {name: green, ge: 5}
stages: [{id: customer}]
actions:
  - {id: low, kind: challenge, when: "score_band == 'red'", do: call}
  - {id: good, kind: positive, when: "logins >= 20", do: upsell}
score:
  bands:
    levels:
      - {name: red, lt: 40}
      - {name: yellow, ge: 40, lt: 70}
      - {name: green, ge: 70}
"""
ROADMAP = hr.Roadmap.model_validate(yaml.safe_load(ROADMAP_YAML))


def _events() -> pl.DataFrame:
    rows: list[tuple[str, dt.datetime]] = []
    batch = {"a2": 3, "a4": 5, "a5": 6, "a6": 3}
    for acc, n in batch.items():
        rows += [(acc, dt.datetime(2026, 3, 20, 9, k)) for k in range(n)]
    for acc in ("a4", "a5", "a6"):
        d = dt.date(2026, 4, 2)
        while d <= RENEWAL:
            rows.append((acc, dt.datetime.combine(d, dt.time(10))))
            d += dt.timedelta(days=1)
    return pl.DataFrame(rows, schema={"account_id": pl.String, "timestamp": pl.Datetime("us")},
                        orient="row").with_columns(pl.lit("login").alias("event"))


ACCOUNTS = pl.DataFrame({"account_id": ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]})
OUTCOMES = pl.DataFrame({
    "account_id": ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "ghost"],
    "renewal_date": [RENEWAL] * 6 + [dt.date(2026, 1, 15), RENEWAL],  # a7: outside the period
    "outcome": ["churned", "churned", "renewed", "renewed", "renewed", "renewed", "churned",
                "churned"],
    "arr": [100, 200, 300, 400, 500, 600, 700, 800],
})


@pytest.fixture(scope="module")
def result() -> object:
    return backtest(ROADMAP, _events(), ACCOUNTS, OUTCOMES, "2026-04-06", "2026-06-30",
                    horizon=90, every="1w", lookback=7)


def test_retention_and_churn_per_band(result: object) -> None:
    bt = result
    expected = pl.DataFrame({
        "band": ["red", "yellow", "green", "all"],
        "accounts": [2, 2, 2, 6], "renewed": [1, 1, 2, 4], "churned": [1, 1, 0, 2],
        "logo_retention": [0.5, 0.5, 1.0, 4 / 6], "logo_churn": [0.5, 0.5, 0.0, 2 / 6],
        "arr": [400.0, 800.0, 900.0, 2100.0], "arr_renewed": [300.0, 600.0, 900.0, 1800.0],
        "arr_churned": [100.0, 200.0, 0.0, 300.0],
        "revenue_retention": [0.75, 0.75, 1.0, 1800 / 2100],
        "revenue_churn": [0.25, 0.25, 0.0, 300 / 2100],
    }, schema_overrides={"accounts": pl.Int64, "renewed": pl.Int64, "churned": pl.Int64})
    assert_frame_equal(bt.bands, expected)  # type: ignore[attr-defined]


def test_separation_auc_and_red_lift(result: object) -> None:
    sep = result.separation.row(0, named=True)  # type: ignore[attr-defined]
    # churners scored {0, 50}, renewers {0, 50, 100, 100}: of 8 pairs the churner is lower
    # in 5 and tied in 2 -> (5 + 2/2) / 8
    assert sep == {"renewals": 6, "churned": 2, "unscored": 0, "auc": 0.75, "red_band": "red",
                   "red_churn_rate": 0.5, "churn_rate": pytest.approx(1 / 3),
                   "red_lift": pytest.approx(1.5)}
    roc = result.roc.rows()  # type: ignore[attr-defined]
    assert roc == [(None, 0.0, 0.0), (0.0, 0.25, 0.5), (50.0, 0.5, 1.0), (100.0, 1.0, 1.0)]


def test_lead_time_of_red_before_each_renewal(result: object) -> None:
    lead = result.lead_times.select("account_id", "red_since", "lead_days").rows()  # type: ignore[attr-defined]
    d = dt.date
    assert lead == [("a1", d(2026, 3, 30), 92), ("a2", d(2026, 4, 20), 71),
                    ("a3", d(2026, 3, 30), 92), ("a4", None, None), ("a5", None, None),
                    ("a6", None, None)]
    summary = result.lead_summary.rows(named=True)  # type: ignore[attr-defined]
    assert summary[0] == {"outcome": "churned", "renewals": 2, "flagged": 2,
                          "flagged_share": 1.0, "median_lead_days": 81.5,
                          "mean_lead_days": 81.5, "max_lead_days": 92}
    assert summary[1] == {"outcome": "renewed", "renewals": 4, "flagged": 1,
                          "flagged_share": 0.25, "median_lead_days": 92.0,
                          "mean_lead_days": 92.0, "max_lead_days": 92}


def test_how_often_each_action_would_have_fired(result: object) -> None:
    rows = result.actions.rows(named=True)  # type: ignore[attr-defined]
    # 13 weekly snapshots in the period (04-06 .. 06-29) and the end date 06-30, which is
    # always a snapshot: 14. Red: a1 14, a2 12 (from 04-20), a3 14 and a7 14 (an account
    # without events and without a renewal in the period); >= 20 logins: a4-a6 from 04-27,
    # 11 snapshots each. The 06-30 snapshot is the renewal day, not before it: it does not
    # count in renewals_fired.
    assert rows == [
        {"roadmap": "bt", "action_id": "low", "kind": "challenge", "fired": 54, "accounts": 4,
         "opened": 1, "renewals_fired": 3, "churn_rate_when_fired": pytest.approx(2 / 3)},
        {"roadmap": "bt", "action_id": "good", "kind": "positive", "fired": 33, "accounts": 3,
         "opened": 3, "renewals_fired": 3, "churn_rate_when_fired": 0.0},
    ]


def test_table_frame_and_chart(result: object) -> None:
    text = result.table()  # type: ignore[attr-defined]
    assert "retention and churn per health band" in text and "| red" in text
    page = result._repr_html_()  # type: ignore[attr-defined]
    assert page.count("<svg") == 2 and "AUC 0.75" in page
    assert repr(result).startswith("Backtest(2026-04-06..2026-06-30, renewals=6, churned=2")
    assert result.to_dict()["separation"]["auc"] == 0.75  # type: ignore[attr-defined]


def test_outcomes_are_checked() -> None:
    with pytest.raises(hr.InputDataError, match="no column 'arr'"):
        backtest(ROADMAP, _events(), ACCOUNTS, OUTCOMES.drop("arr"), "2026-04-01", "2026-06-30")
    bad = OUTCOMES.with_columns(pl.lit("lost").alias("outcome"))
    with pytest.raises(hr.InputDataError, match="neither 'renewed' nor 'churned'"):
        backtest(ROADMAP, _events(), ACCOUNTS, bad, "2026-04-01", "2026-06-30")
    text_dates = OUTCOMES.with_columns(pl.col("renewal_date").cast(pl.String))
    with pytest.raises(hr.InputDataError, match="expected Date"):
        backtest(ROADMAP, _events(), ACCOUNTS, text_dates, "2026-04-01", "2026-06-30")


def test_cli_backtest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path
    _events().write_parquet(folder / "events.parquet")
    ACCOUNTS.write_parquet(folder / "accounts.parquet")
    OUTCOMES.write_csv(folder / "outcomes.csv")
    (folder / "roadmap.yaml").write_text(ROADMAP_YAML)
    args = [str(folder / "roadmap.yaml"), "--events", str(folder / "events.parquet"),
            "--accounts", str(folder / "accounts.parquet"), "--outcomes",
            str(folder / "outcomes.csv"), "--start", "2026-04-06", "--end", "2026-06-30",
            "--lookback", "7"]
    assert main(["backtest", *args]) == 0
    out = capsys.readouterr().out
    assert "AUC" in out or "auc" in out
    assert main(["backtest", *args, "--format", "json", "--out", str(folder / "out")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["separation"]["auc"] == 0.75
    assert (folder / "out" / "bands.parquet").exists()
    assert (folder / "out" / "goal.parquet").exists()
    assert (folder / "out" / "manifest.json").exists()


def test_does_reaching_the_goal_predict_renewal() -> None:
    # the goal: at least 3 logins in the last 30 days. 90 days before the renewal a2 (3),
    # a4 (5), a5 (6) and a6 (3) had reached it; a1 and a3 (0) had not
    roadmap = ROADMAP.model_copy(update={"goal": hr.roadmap.Goal(text="renew",
                                                                 target="logins >= 3")})
    bt = backtest(roadmap, _events(), ACCOUNTS, OUTCOMES, "2026-04-06", "2026-06-30",
                  horizon=90, every="1w", lookback=7)
    rows = {r["goal"]: r for r in bt.goal.rows(named=True)}
    assert list(rows) == ["reached", "not reached", "all"]
    assert (rows["reached"]["accounts"], rows["reached"]["churned"]) == (4, 1)
    assert (rows["not reached"]["accounts"], rows["not reached"]["churned"]) == (2, 1)
    assert rows["reached"]["logo_retention"] == 0.75
    assert rows["not reached"]["churn_lift"] == pytest.approx(1.5)  # 1/2 over 2/6
    assert rows["reached"]["arr_churned"] == 200.0
    assert "retention and churn by goal reached" in bt.table()
    assert bt.to_dict()["goal"][0]["goal"] == "reached"


def test_a_roadmap_without_a_target_has_no_goal_rows(result: object) -> None:
    rows = result.goal.rows(named=True)  # type: ignore[attr-defined]
    assert [r["goal"] for r in rows] == ["reached", "not reached", "no target", "all"]
    assert rows[2]["accounts"] == 6 and rows[0]["accounts"] == 0
