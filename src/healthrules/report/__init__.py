"""A self-contained HTML report of an evaluation (or a history) for people without Python.

One HTML file, with no script, no external style sheet or font, and no network request when
it is opened (a Content-Security-Policy in the file forbids them); the charts are inline SVG
drawn by :mod:`healthrules.report.svg`. It shows:

- the overview: accounts, median score and actions; accounts per stage and score band (chart
  and table); the score distribution (histogram with the score bands' cut points);
- with a :class:`~healthrules.history.History`: the trends: accounts per band and the median
  score per date, fired actions per date, one small chart per stage, and a sparkline of every
  listed account's score;
- the actions: every action's considered / fired / unknown counts, and the most urgent fired
  actions with their text and evidence;
- the goal attainment: the share of accounts that reached the goal per stage (chart and
  table) and per score segment, and each listed account's verdict;
- with the state store of the daily job (``healthrules run``): the changes each run reported,
  the score trends from the runs kept (accounts per band, mean score, share that reached the
  goal, mean score per stage: ``run_scores``, no evaluation of the past), the open actions
  with the day they opened, the latest run's changes and the pins in force;
- the success roadmap as its table (stages, tasks, actions, indicators, score);
- the accounts, most urgent first (by their most urgent fired action, then the lowest score),
  and for the first of them the full explanation: why this stage, why this score, why each
  action fired or did not (:meth:`healthrules.Evaluation.explain`).

Large evaluations are cut to what a person reads: :class:`Limits` (``top``,
``list_accounts``, ``explain_accounts``); the page says how many are left out and how to see
them. Every number is aggregated with polars; only the listed rows become HTML. Every text
from the rules or the data (account ids, names, action texts) is escaped.

See ``docs/report.md``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

from healthrules.report._page import JobState, Limits, build

if TYPE_CHECKING:
    from healthrules.evaluation import Evaluation
    from healthrules.history import History, StateStore

__all__ = ["JobState", "Limits", "read_store", "report_html", "write_report"]


def read_store(store: str | os.PathLike[str] | StateStore, evaluation: Evaluation) -> JobState:
    """Read what the report shows of a daily job's state store, without writing to it.

    Parameters
    ----------
    store
        A :class:`~healthrules.history.StateStore` or the path of its file (opened read-only;
        it must exist).
    evaluation
        The evaluation the report is of: its roadmap must be the store's, and the runs,
        changes and pins are read up to its date.

    Raises
    ------
    StoreError
        If there is no store at the path, it is damaged, or it keeps another roadmap's state.
    """
    from healthrules.history import StateStore, StoreError

    own = not isinstance(store, StateStore)
    s = store if isinstance(store, StateStore) else StateStore(store, readonly=True,
                                                               create=False)
    try:
        key = evaluation.account_key
        dtype = evaluation.stages.schema[key]
        meta = s.meta()
        if "plan_id" in meta and meta["plan_id"] != evaluation.plan.id:
            raise StoreError(f"the store keeps the state of roadmap {meta['plan_id']!r}, not "
                             f"{evaluation.plan.id!r}", path=s.path)
        import polars as pl

        runs = s.runs().filter(pl.col("as_of") <= evaluation.as_of)
        latest: dt.date | None = runs["as_of"].max() if runs.height else None  # type: ignore[assignment]
        changes = (s.changes(latest, key=key, key_dtype=dtype) if latest is not None
                   else s.changes(key=key, key_dtype=dtype).head(0))
        return JobState(
            path=str(s.path), runs=runs,
            actions=s.actions(key=key, key_dtype=dtype, statuses=("pending", "open")),
            changes=changes,
            overrides=s.overrides(active_on=evaluation.as_of, key=key, key_dtype=dtype),
            last_run=s.last_run(),
            scores=s.run_scores().filter(pl.col("as_of") <= evaluation.as_of))
    finally:
        if own:
            s.close()


def _split(source: Evaluation | History) -> tuple[Evaluation, History | None]:
    from healthrules.evaluation import Evaluation
    from healthrules.history import History

    if isinstance(source, Evaluation):
        return source, None
    if isinstance(source, History):
        if not source.dates:
            raise ValueError("the history has no snapshot date to report")
        return source.at(source.dates[-1]), source
    raise TypeError(f"a report is made of an Evaluation or a History, not "
                    f"{type(source).__name__}")


def report_html(source: Evaluation | History, *, title: str | None = None,
                limits: Limits | None = None,
                store: str | os.PathLike[str] | StateStore | None = None) -> str:
    """The report as one HTML document (a string).

    Parameters
    ----------
    source
        The result of :func:`healthrules.evaluate`, or of :func:`healthrules.history` (the
        report is then as of its last date, with the trends over every date).
    title
        The page's heading (default: the roadmaps' titles).
    limits
        How many actions, listed accounts and explained accounts to show (default
        ``Limits()``: 25, 1,000 and 100).
    store
        The state store of the daily job (``healthrules run``) of the same roadmap: adds its
        changes per run, open actions, latest changes and pins (see :func:`read_store`).

    Returns
    -------
    str
        A complete HTML document.

    Raises
    ------
    TypeError
        If ``source`` is neither an evaluation nor a history.
    StoreError
        If ``store`` cannot be read or belongs to another roadmap.

    Examples
    --------
    >>> import healthrules as hr
    >>> from healthrules.datasets import sample
    >>> from healthrules.examples import example_path
    >>> from healthrules.report import Limits, report_html
    >>> data = sample(40)
    >>> result = hr.evaluate(hr.load(example_path("b2b-saas")), data.events, data.accounts,
    ...                      data.as_of)
    >>> page = report_html(result, limits=Limits(explain_accounts=5))
    >>> page.startswith("<!DOCTYPE html>"), page.count("<section class='acct'"), "<script" in page
    (True, 5, False)
    """
    ev, history = _split(source)
    job = read_store(store, ev) if store is not None else None
    return build(ev, history, limits or Limits(), title, job)


def write_report(source: Evaluation | History, path: str | os.PathLike[str], *,
                 title: str | None = None, limits: Limits | None = None,
                 store: str | os.PathLike[str] | StateStore | None = None) -> Path:
    """Write the report (:func:`report_html`) to ``path`` atomically; return the path.

    The file is written next to its final place and renamed over it, so a reader (or a web
    server) sees the previous report or the new one, never half of one.
    """
    from healthrules.output import atomic_write_text

    text = report_html(source, title=title, limits=limits, store=store)
    target = Path(path)
    atomic_write_text(target, text)
    return target
