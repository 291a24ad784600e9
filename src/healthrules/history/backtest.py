"""Backtesting: would this roadmap have seen the churns coming?

Given renewal outcomes (account, renewal date, renewed or churned, recurring revenue),
:func:`backtest` evaluates the roadmap in the past, exactly as it would have run then (a
snapshot never sees a later event), and reports:

- per health band ``horizon`` days before each renewal: accounts, logo retention and churn,
  revenue retention and churn (``bands``);
- how well the score separates churners from renewers: the AUC (the chance that a churner
  scored below a renewer, ties counting half) and the lift of the worst band (its churn rate
  over the overall churn rate), with the ROC curve (``separation``, ``roc``);
- how early the score turned red (the worst band) before each churn: the red streak still
  running at the last snapshot before the renewal, and its length (``lead_times``);
- for each action, how often it would have fired over the period, how many times it would
  have opened, and the churn rate of the renewals it fired for in the ``horizon`` days before
  (``actions``);
- whether reaching the goal predicts renewal: retention and churn of the renewals whose
  account had reached the goal (``goal.target``) ``horizon`` days before, of those that had
  not, and of those where it was unknown, with the lift of "not reached" (``goal``).

All of it is polars over the frames of :func:`healthrules.history.history`; the result prints
as a table in the terminal, is a set of frames in Python and draws a chart in notebooks.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from healthrules.compiler import Plan
from healthrules.engine import Events
from healthrules.errors import Code, InputDataError, Issue, Location
from healthrules.history.lifecycle import signals_for
from healthrules.history.snapshots import (
    AS_OF,
    Engine,
    History,
    _as_date,
    date_range,
    evaluate_dates,
    history_of,
    prepare_inputs,
)
from healthrules.inputs import lazy
from healthrules.query_flags import OPTIMISED
from healthrules.roadmap import Pack, Roadmap
from healthrules.sources import FrameInput

__all__ = ["Backtest", "backtest"]

_OUTCOMES = ("renewed", "churned")


@dataclass(frozen=True)
class Backtest:
    """The result of :func:`backtest`: frames, a terminal table and a notebook chart.

    Attributes
    ----------
    bands
        One row per score band (worst first), then ``no score`` and ``all``: ``accounts``,
        ``renewed``, ``churned``, ``logo_retention``, ``logo_churn``, ``arr``,
        ``arr_renewed``, ``arr_churned``, ``revenue_retention``, ``revenue_churn``.
    separation
        One row: ``renewals``, ``churned``, ``unscored``, ``auc``, ``red_band``,
        ``red_churn_rate``, ``churn_rate`` (scored renewals), ``red_lift``.
    roc
        The ROC curve of "score at or below t means churn": ``threshold``,
        ``false_positive_rate``, ``true_positive_rate``.
    lead_times
        One row per renewal: key, ``renewal_date``, ``churned``, ``red_since`` (first
        snapshot of the red streak running at the last snapshot before the renewal, or
        null), ``lead_days``.
    lead_summary
        One row per outcome: ``renewals``, ``flagged`` (red at the last snapshot before the
        renewal), ``flagged_share``, ``median_lead_days``, ``mean_lead_days``,
        ``max_lead_days``. For churns, flagged is a catch; for renewals, a false alarm.
    actions
        One row per action: ``fired`` (snapshots where its condition held, in the period),
        ``accounts``, ``opened`` (lifecycle openings in the period), ``renewals_fired``
        (renewals it fired for in the ``horizon`` days before) and
        ``churn_rate_when_fired``.
    history
        The weekly history behind the lead times and the actions; its ``attribute_source``
        (also :attr:`attribute_source`, the second line of :meth:`table`) says whether each
        date read the attributes valid then or one snapshot for every date.
    goal
        Whether reaching the goal predicts renewal: one row per goal state ``horizon`` days
        before the renewal (``reached``, ``not reached``, ``unknown``: a value was null,
        ``no target``: the account's roadmap has no ``goal.target``), then ``all``, with the
        columns of ``bands`` (``goal`` instead of ``band``) and ``churn_lift`` (the state's
        churn rate over the overall one).
    """

    horizon: int
    start: dt.date
    end: dt.date
    bands: pl.DataFrame
    separation: pl.DataFrame
    roc: pl.DataFrame
    lead_times: pl.DataFrame
    lead_summary: pl.DataFrame
    actions: pl.DataFrame
    history: History = field(repr=False)
    band_order: tuple[str, ...] = ()
    goal: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def attribute_source(self) -> str:
        """Where the attributes of each scored date came from (dated rows, or one snapshot
        for every date: then attributes that changed later leak into the past)."""
        return self.history.attribute_source

    @property
    def auc(self) -> float | None:
        """The AUC of the score at the horizon (None without scored churns and renewals)."""
        value = self.separation["auc"].item()
        return None if value is None else float(value)

    def table(self) -> str:
        """The report as plain text for the terminal."""
        out = [f"backtest {self.start}..{self.end}: score {self.horizon} days before each "
               "renewal", self.attribute_source, ""]
        with pl.Config(tbl_rows=50, tbl_cols=20, tbl_hide_dataframe_shape=True,
                       tbl_hide_column_data_types=True, float_precision=3,
                       tbl_formatting="ASCII_MARKDOWN", tbl_width_chars=160,
                       fmt_str_lengths=40):
            out += ["retention and churn per health band:", str(self.bands), ""]
            out += ["separation:", str(self.separation), ""]
            out += ["retention and churn by goal reached:", str(self.goal), ""]
            out += ["how early the score turned red before the renewal:",
                    str(self.lead_summary), ""]
            out += ["actions over the period:", str(self.actions)]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        auc = "n/a" if self.auc is None else f"{self.auc:.3f}"
        total = self.bands.filter(pl.col("band") == "all").row(0, named=True)
        return (f"Backtest({self.start}..{self.end}, renewals={total['accounts']}, "
                f"churned={total['churned']}, auc={auc})")

    def to_dict(self) -> dict[str, Any]:
        """Every frame as a list of records (what ``--format json`` prints)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "horizon": self.horizon, "attribute_source": self.attribute_source,
                "attributes_dated": self.history.diagnostics.get(
                    "attributes_one_snapshot", 1) == 0,
                "bands": self.bands.to_dicts(),
                "separation": self.separation.to_dicts()[0],
                "lead_summary": self.lead_summary.to_dicts(), "actions": self.actions.to_dicts(),
                "goal": self.goal.to_dicts(),
                "roc": self.roc.to_dicts()}

    def _repr_html_(self) -> str:
        return _chart(self)


def _check_outcomes(outcomes: Any, plan: Plan) -> pl.DataFrame:
    key = plan.account_key
    frame = lazy(outcomes, "outcomes").collect(optimizations=OPTIMISED)
    where = Location(file="<outcomes>")
    issues: list[Issue] = []
    wanted = {key: "the account key", "renewal_date": "a Date column",
              "outcome": "'renewed' or 'churned'", "arr": "a number (recurring revenue)"}
    for col, what in wanted.items():
        if col not in frame.columns:
            issues.append(Issue(code=Code.MISSING_COLUMN.value, location=where,
                                message=f"outcomes frame has no column {col!r} ({what})"))
    if issues:
        raise InputDataError(issues)
    if frame.schema["renewal_date"] != pl.Date:
        issues.append(Issue(code=Code.WRONG_DTYPE.value, location=where,
                            message=f"outcomes column 'renewal_date' is "
                            f"{frame.schema['renewal_date']}, expected Date",
                            hint="parse it with pl.col('renewal_date').str.to_date()"))
    if not frame.schema["arr"].is_numeric():
        issues.append(Issue(code=Code.WRONG_DTYPE.value, location=where,
                            message=f"outcomes column 'arr' is {frame.schema['arr']}, "
                            "expected a number"))
    if issues:
        raise InputDataError(issues)
    rows = frame.select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("row"),
                        pl.col("outcome").cast(pl.String), key, "renewal_date")
    bad = rows.filter(~pl.col("outcome").is_in(_OUTCOMES) | pl.col("outcome").is_null())
    if bad.height:
        examples = bad["outcome"].unique(maintain_order=True).head(3).to_list()
        issues.append(Issue(code=Code.WRONG_DTYPE.value, location=Location(
                                file=where.file, path="outcome"),
                            message=f"{bad.height} outcome(s) are neither 'renewed' nor "
                            f"'churned' (e.g. {examples}; the first: row {bad['row'][0]})"))
    nulls = rows.filter(pl.col(key).is_null() | pl.col("renewal_date").is_null())
    if nulls.height:
        first = nulls.row(0, named=True)
        empty = key if first[key] is None else "renewal_date"
        issues.append(Issue(code=Code.NULL_KEY.value, location=Location(
                                file=where.file, path=empty),
                            message=f"{nulls.height} outcome(s) have no account or renewal "
                            f"date (the first: row {first['row']}, no {empty})"))
    if issues:
        raise InputDataError(issues)
    return frame.select(key, "renewal_date", (pl.col("outcome").cast(pl.String) == "churned")
                        .alias("churned"), pl.col("arr").cast(pl.Float64).fill_null(0.0))


def backtest(
    roadmap: Roadmap | Pack | Plan,
    events: Events,
    accounts: FrameInput,
    outcomes: pl.DataFrame | pl.LazyFrame,
    start: dt.date | str,
    end: dt.date | str,
    *,
    horizon: int = 90,
    every: str | int | dt.timedelta = "1w",
    lookback: int = 180,
) -> Backtest:
    """Evaluate a roadmap in the past and compare it with what happened at renewal.

    Parameters
    ----------
    roadmap
        A roadmap, a pack or a compiled plan.
    events, accounts
        As for :func:`healthrules.evaluate`.
    outcomes
        One row per renewal: the account key, ``renewal_date`` (Date), ``outcome``
        (``renewed`` or ``churned``) and ``arr`` (recurring revenue at stake).
    start, end
        The period: renewals dated from ``start`` to ``end`` are scored.
    horizon
        Days before each renewal at which its score is read (default 90).
    every
        The step of the snapshots used for lead times and action counts (default weekly),
        from ``start - lookback``; ``end`` is always a snapshot, even off the step.
    lookback
        Days of snapshots before ``start`` (so early renewals have a history too).

    Returns
    -------
    Backtest

    Raises
    ------
    InputDataError
        If a frame does not match its contract (the outcomes' columns included).
    ValueError
        If the dates are malformed or ``horizon`` / ``lookback`` are negative.
    """
    first, last = _as_date(start, "start"), _as_date(end, "end")
    if horizon < 0 or lookback < 0:
        raise ValueError("horizon and lookback must be zero or more days")
    grid_dates = date_range(first - dt.timedelta(days=lookback), last, every)
    if grid_dates[-1] != last:  # the period's action counts always include its last day
        grid_dates.append(last)
    # the earliest date scored: the grid's first, or a renewal's score date (horizon days
    # before a renewal of the period)
    plan, ev_lf, acc_df = prepare_inputs(
        roadmap, events, accounts, last,
        min(grid_dates[0], first - dt.timedelta(days=horizon)))
    key = plan.account_key
    out = _check_outcomes(outcomes, plan).filter(
        pl.col("renewal_date").is_between(pl.lit(first), pl.lit(last)))
    out = out.join(acc_df.select(key), on=key, how="semi").with_columns(
        (pl.col("renewal_date") - pl.duration(days=horizon)).alias("scored_on"))
    score_dates = out["scored_on"].unique().to_list()
    engine = Engine(plan, ev_lf, acc_df, sorted({*grid_dates, *score_dates}))
    # the score of each renewal, horizon days before it
    pairs = engine.existing(out.select(pl.col("scored_on").alias(AS_OF), key).unique())
    scored = engine.evaluate(pairs)["scores"] if pairs.height else None
    at = out.join(scored.select(pl.col("as_of").alias("scored_on"), key, "roadmap", "score",
                                "score_band", "goal_reached") if scored is not None else
                  pl.DataFrame(schema={"scored_on": pl.Date, key: acc_df.schema[key],
                                       "roadmap": pl.String, "score": pl.Float64,
                                       "score_band": pl.String, "goal_reached": pl.Boolean}),
                  on=["scored_on", key], how="left")
    levels = _band_order(plan)
    # the weekly history behind lead times and action counts
    engine_used, result = evaluate_dates(plan, ev_lf, acc_df, grid_dates,
                                         signals=signals_for(plan), engine=engine)
    hist = history_of(plan, engine_used, grid_dates, result)
    red = levels[0] if levels else None
    lead = _lead_times(hist, out, key, red)
    return Backtest(
        horizon=horizon, start=first, end=last,
        bands=_bands(at, levels), separation=_separation(at, red),
        roc=_roc(at), lead_times=lead, lead_summary=_lead_summary(lead),
        actions=_actions(hist, out, key, first, last, horizon), history=hist,
        band_order=tuple(levels), goal=_goal(at, plan))


def _band_order(plan: Plan) -> list[str]:
    """Score band names from the worst to the best (of the first roadmap with score bands;
    names only its segments' bands have come after, worst first)."""
    for cr in plan.roadmaps:
        score = cr.roadmap.score
        order: list[str] = []
        for bands in (score.bands, *(s.bands for s in score.segments)):
            if bands is not None:
                order += [b.name for b in bands.ordered_worst_to_best() if b.name not in order]
        if order:
            return order
    return []


def _rates(frame: pl.DataFrame) -> pl.DataFrame:
    n = pl.col("accounts").cast(pl.Float64)
    arr = pl.col("arr")
    return frame.with_columns(
        pl.when(n > 0).then(pl.col("renewed") / n).alias("logo_retention"),
        pl.when(n > 0).then(pl.col("churned") / n).alias("logo_churn"),
        pl.when(arr > 0).then(pl.col("arr_renewed") / arr).alias("revenue_retention"),
        pl.when(arr > 0).then(pl.col("arr_churned") / arr).alias("revenue_churn"),
    ).select("band", "accounts", "renewed", "churned", "logo_retention", "logo_churn", "arr",
             "arr_renewed", "arr_churned", "revenue_retention", "revenue_churn")


def _bands(at: pl.DataFrame, levels: list[str]) -> pl.DataFrame:
    churned = pl.col("churned")
    aggs = [pl.len().cast(pl.Int64).alias("accounts"),
            (~churned).sum().cast(pl.Int64).alias("renewed"),
            churned.sum().cast(pl.Int64).alias("churned"),
            pl.col("arr").sum().alias("arr"),
            pl.col("arr").filter(~churned).sum().alias("arr_renewed"),
            pl.col("arr").filter(churned).sum().alias("arr_churned")]
    named = at.with_columns(pl.when(pl.col("score").is_null()).then(pl.lit("no score"))
                            .otherwise(pl.col("score_band").fill_null("no band")).alias("band"))
    per = named.group_by("band").agg(aggs)
    order = [*levels, "no band", "no score"]
    rank = pl.DataFrame({"band": order, "__order": list(range(len(order)))})
    per = rank.join(per, on="band", how="left").filter(
        pl.col("accounts").is_not_null() | pl.col("band").is_in(levels)).sort("__order").drop(
        "__order").with_columns(pl.col("accounts", "renewed", "churned").fill_null(0),
                                pl.col("arr", "arr_renewed", "arr_churned").fill_null(0.0))
    total = at.select(pl.lit("all").alias("band"), *aggs)
    return _rates(pl.concat([per, total], how="vertical_relaxed"))


_GOAL_STATES = ("reached", "not reached", "unknown", "no target")


def _goal(at: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """Retention and churn by whether the account had reached its goal at the horizon."""
    with_target = [cr.id for cr in plan.roadmaps if cr.roadmap.goal.target is not None]
    reached = pl.col("goal_reached")
    state = (pl.when(~pl.col("roadmap").is_in(with_target) | pl.col("roadmap").is_null())
             .then(pl.lit("no target"))
             .when(reached.is_null()).then(pl.lit("unknown"))
             .when(reached).then(pl.lit("reached")).otherwise(pl.lit("not reached")))
    per = _bands(at.with_columns(state.alias("score_band"), pl.lit(0.0).alias("score")),
                 list(_GOAL_STATES)).filter(
        (pl.col("accounts") > 0) | pl.col("band").is_in(["reached", "not reached", "all"]))
    overall = per.filter(pl.col("band") == "all")["logo_churn"].item()
    lift = (pl.col("logo_churn") / overall) if overall else pl.lit(None, pl.Float64)
    return per.rename({"band": "goal"}).with_columns(lift.alias("churn_lift"))


def _separation(at: pl.DataFrame, red: str | None) -> pl.DataFrame:
    scored = at.filter(pl.col("score").is_not_null())
    n_c = int(scored["churned"].sum())
    n_r = scored.height - n_c
    auc: float | None = None
    if n_c and n_r:
        # Mann-Whitney: churners should score lower; ties count half
        ranked = scored.with_columns(pl.col("score").rank("average").alias("__rank"))
        r_renewed = float(ranked.filter(~pl.col("churned"))["__rank"].sum())
        auc = (r_renewed - n_r * (n_r + 1) / 2) / (n_r * n_c)
    churn_rate = n_c / scored.height if scored.height else None
    red_rate: float | None = None
    if red is not None:
        in_red = scored.filter(pl.col("score_band") == red)
        red_rate = float(in_red["churned"].mean()) if in_red.height else None  # type: ignore[arg-type]
    lift = red_rate / churn_rate if red_rate is not None and churn_rate else None
    return pl.DataFrame({
        "renewals": [at.height], "churned": [int(at["churned"].sum())],
        "unscored": [at.height - scored.height], "auc": [auc], "red_band": [red],
        "red_churn_rate": [red_rate], "churn_rate": [churn_rate], "red_lift": [lift],
    }, schema={"renewals": pl.Int64, "churned": pl.Int64, "unscored": pl.Int64,
               "auc": pl.Float64, "red_band": pl.String, "red_churn_rate": pl.Float64,
               "churn_rate": pl.Float64, "red_lift": pl.Float64})


def _roc(at: pl.DataFrame) -> pl.DataFrame:
    scored = at.filter(pl.col("score").is_not_null())
    n_c = int(scored["churned"].sum())
    n_r = scored.height - n_c
    schema = {"threshold": pl.Float64, "false_positive_rate": pl.Float64,
              "true_positive_rate": pl.Float64}
    if not (n_c and n_r):
        return pl.DataFrame(schema=schema)
    steps = scored.group_by("score").agg(
        pl.col("churned").sum().alias("c"), (~pl.col("churned")).sum().alias("r")).sort("score")
    curve = steps.select(
        pl.col("score").alias("threshold"),
        (pl.col("r").cum_sum() / n_r).alias("false_positive_rate"),
        (pl.col("c").cum_sum() / n_c).alias("true_positive_rate"))
    start = pl.DataFrame({"threshold": [None], "false_positive_rate": [0.0],
                          "true_positive_rate": [0.0]}, schema=schema)
    return pl.concat([start, curve.cast(schema)])  # type: ignore[arg-type]


def _lead_times(hist: History, out: pl.DataFrame, key: str, red: str | None) -> pl.DataFrame:
    """Per renewal: the red streak running at the last snapshot before it."""
    schema = {key: out.schema[key], "renewal_date": pl.Date, "churned": pl.Boolean,
              "red_since": pl.Date, "lead_days": pl.Int64}
    if red is None or out.height == 0:
        return out.select(key, "renewal_date", "churned").with_columns(
            pl.lit(None, pl.Date).alias("red_since"), pl.lit(None, pl.Int64).alias("lead_days"))
    s = hist.scores.select("as_of", key, (pl.col("score_band") == red).fill_null(False).alias(
        "red")).sort(key, "as_of")
    # runs of equal redness per account; a run starts where the account or the value changes
    start = (pl.col(key) != pl.col(key).shift(1)).fill_null(True) | (
        pl.col("red") != pl.col("red").shift(1)).fill_null(True)
    s = s.with_columns(start.cum_sum().alias("__run"))
    s = s.with_columns(pl.col("as_of").min().over("__run").alias("__run_start"))
    probes = out.select(key, "renewal_date", "churned").with_columns(
        (pl.col("renewal_date") - pl.duration(days=1)).alias("__probe")).sort("__probe")
    last = probes.join_asof(
        s.select(key, pl.col("as_of").alias("__snap"), "red", "__run_start").sort("__snap"),
        left_on="__probe", right_on="__snap", by=key, strategy="backward",
        check_sortedness=False)  # both sides are sorted on the date; "by" hides it
    since = pl.when(pl.col("red").fill_null(False)).then(pl.col("__run_start"))
    return last.select(key, "renewal_date", "churned", since.alias("red_since"),
                       (pl.col("renewal_date") - since).dt.total_days().cast(pl.Int64)
                       .alias("lead_days")).sort("renewal_date", key).cast(
        schema)  # type: ignore[arg-type]


def _lead_summary(lead: pl.DataFrame) -> pl.DataFrame:
    flagged = pl.col("lead_days").is_not_null()
    per = lead.group_by("churned").agg(
        pl.len().cast(pl.Int64).alias("renewals"),
        flagged.sum().cast(pl.Int64).alias("flagged"),
        pl.col("lead_days").median().alias("median_lead_days"),
        pl.col("lead_days").mean().alias("mean_lead_days"),
        pl.col("lead_days").max().alias("max_lead_days"),
    )
    outcomes = pl.DataFrame({"churned": [True, False], "outcome": ["churned", "renewed"]})
    return outcomes.join(per, on="churned", how="left").with_columns(
        pl.col("renewals", "flagged").fill_null(0),
    ).select("outcome", "renewals", "flagged",
             pl.when(pl.col("renewals") > 0).then(pl.col("flagged") / pl.col("renewals"))
             .alias("flagged_share"), "median_lead_days", "mean_lead_days", "max_lead_days")


def _actions(hist: History, out: pl.DataFrame, key: str, first: dt.date, last: dt.date,
             horizon: int) -> pl.DataFrame:
    decl = pl.DataFrame(
        [{"roadmap": cr.id, "action_id": a.id, "kind": a.kind, "__order": i * 10_000 + k}
         for i, cr in enumerate(hist.plan.roadmaps)
         for k, (_, a) in enumerate(cr.roadmap.all_actions())],
        schema={"roadmap": pl.String, "action_id": pl.String, "kind": pl.String,
                "__order": pl.Int64})
    in_period = pl.col("as_of").is_between(pl.lit(first), pl.lit(last))
    fired = hist.fired.index.filter(in_period).group_by("roadmap", "action_id").agg(
        pl.len().cast(pl.Int64).alias("fired"), pl.col(key).n_unique().cast(pl.Int64).alias(
            "accounts"))
    opened = hist.lifecycle.changes.filter(in_period & (pl.col("change") == "opened")).group_by(
        "roadmap", "action_id").agg(pl.len().cast(pl.Int64).alias("opened"))
    # renewals the action fired for in the horizon days before them
    window = hist.fired.index.select("as_of", key, "roadmap", "action_id").join(
        out.select(key, "renewal_date", "churned"), on=key).filter(
        (pl.col("as_of") < pl.col("renewal_date"))
        & (pl.col("as_of") >= pl.col("renewal_date") - pl.duration(days=horizon)))
    per_renewal = window.unique([key, "renewal_date", "roadmap", "action_id"]).group_by(
        "roadmap", "action_id").agg(pl.len().cast(pl.Int64).alias("renewals_fired"),
                                    pl.col("churned").mean().alias("churn_rate_when_fired"))
    return decl.join(fired, on=["roadmap", "action_id"], how="left").join(
        opened, on=["roadmap", "action_id"], how="left").join(
        per_renewal, on=["roadmap", "action_id"], how="left").with_columns(
        pl.col("fired", "accounts", "opened", "renewals_fired").fill_null(0)).sort(
        "__order").drop("__order")


# ---------------------------------------------------------------------- the notebook chart


def _chart(bt: Backtest) -> str:
    """Churn rate per band (bars) and the ROC curve, as inline SVG, then the tables."""
    bands = bt.bands.filter(pl.col("band") != "all")
    w, h, pad = 360, 200, 30
    bars: list[str] = []
    n = max(bands.height, 1)
    bw = (w - 2 * pad) / n
    for j, (band, rate, count) in enumerate(bands.select(
            "band", "logo_churn", "accounts").rows()):
        r = float(rate or 0.0)
        bh = r * (h - 2 * pad)
        x = pad + j * bw
        bars.append(
            f'<rect x="{x + 4:.1f}" y="{h - pad - bh:.1f}" width="{bw - 8:.1f}" '
            f'height="{bh:.1f}" fill="{_colour(str(band), bt.band_order)}"><title>'
            f'{html.escape(str(band))}: '
            f'{r:.0%} churn of {count}</title></rect>'
            f'<text x="{x + bw / 2:.1f}" y="{h - pad + 14}" font-size="11" '
            f'text-anchor="middle">{html.escape(str(band))}</text>'
            f'<text x="{x + bw / 2:.1f}" y="{h - pad - bh - 4:.1f}" font-size="11" '
            f'text-anchor="middle">{r:.0%}</text>')
    bar_svg = (f'<svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">'
               f'<text x="{pad}" y="16" font-size="12">logo churn per band, {bt.horizon} days '
               f'before renewal</text>{"".join(bars)}'
               f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" '
               'stroke="#888"/></svg>')
    size = h - 2 * pad
    pts = " ".join(f"{pad + float(fp) * size:.1f},{h - pad - float(tp) * size:.1f}"
                   for fp, tp in bt.roc.select("false_positive_rate",
                                               "true_positive_rate").rows())
    auc = "n/a" if bt.auc is None else f"{bt.auc:.2f}"
    roc_svg = (f'<svg width="{size + 2 * pad}" height="{h}" xmlns="http://www.w3.org/2000/svg">'
               f'<text x="{pad}" y="16" font-size="12">ROC of the score, AUC {auc}</text>'
               f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" '
               f'stroke="#888"/><line x1="{pad}" y1="{h - pad}" x2="{pad + size}" y2="{pad}" '
               f'stroke="#ccc" stroke-dasharray="4"/>'
               f'<polyline points="{pts}" fill="none" stroke="#c0392b" stroke-width="2"/>'
               '</svg>')
    tables = "".join(f"<h4>{html.escape(title)}</h4>{frame._repr_html_()}" for title, frame in (
        ("Retention and churn per health band", bt.bands), ("Separation", bt.separation),
        ("Retention and churn by goal reached", bt.goal),
        ("Lead time of red before renewal", bt.lead_summary), ("Actions", bt.actions)))
    return (f"<div><h3>Backtest {bt.start} .. {bt.end}</h3>"
            f"<p>{html.escape(bt.attribute_source)}</p>"
            f'<div style="display:flex;gap:24px">{bar_svg}{roc_svg}</div>{tables}</div>')


def _colour(band: str, order: tuple[str, ...]) -> str:
    """Red for the worst band to green for the best; grey for rows without a band."""
    palette = ["#c0392b", "#e67e22", "#f1c40f", "#7dcea0", "#27ae60"]
    if band not in order:
        return "#999999"
    j = order.index(band)
    return palette[round(j * (len(palette) - 1) / max(len(order) - 1, 1))]
