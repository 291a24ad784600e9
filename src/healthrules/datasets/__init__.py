"""Synthetic, reproducible customer-success data: accounts, usage events and their personas.

:func:`sample` builds a small SaaS business as of a date: paying customers and trial prospects,
each following a *persona* (a healthy adopter, a stalled onboarding, a key user who is leaving,
an account ready to expand, a quiet one that renews anyway, a renewal with low usage, and trial
prospects who are decided, undecided or just looking). Its usage events have weekday rhythms
(far fewer on weekends), several users per account with one key person, office-hour times,
NPS answers from some accounts, and the signals the example rule packs in ``rules/examples/``
look for. Every action of those packs fires for at least one account of the default sample.

Per-account parameters are drawn with :class:`random.Random`; the events themselves are built
with vectorised polars expressions and counter-based random numbers (no Python loop per
event), so 100,000 accounts and about ten million events take seconds. The same arguments
always give the same frames, on any machine and polars version.

The frames
----------
``accounts`` (one row per account, sorted by ``account_id``):

============== ========= =====================================================================
column         dtype     meaning
============== ========= =====================================================================
account_id     String    ``A000001``, ``A000002``, ...
name           String    a made-up company name
plan           String    ``trial`` (prospects), ``basic``, ``pro`` or ``enterprise``
seats          Int64     licensed seats (5 for a trial)
contract_start Date      start of the subscription (null for prospects)
renewal_date   Date      next renewal, the next anniversary of ``contract_start`` (null for
                         prospects)
arr            Float64   annual recurring revenue (null for prospects)
goal           String    the customer's goal: ``do_it_for_us`` or ``self_sufficient``
key_user       String    ``user_id`` of the account's key person (its first user, ``...-u00``)
lifecycle      String    ``customer`` or ``prospect``
trial_start    Date      first day of the 30-day free trial (null for customers)
============== ========= =====================================================================

``events`` (sorted by ``account_id`` then ``timestamp``): ``account_id``, ``user_id``
(``<account>-u00`` .. ``-uNN``; ``<account>-dm`` is the customer's decision maker, who only
appears in ``meeting_held``), ``event``, ``timestamp`` (``Datetime("us", "UTC")``, always
before the midnight that ends ``as_of``) and ``value`` (``Float64``, null unless stated):

=========================== ==================================================================
event                       meaning
=========================== ==================================================================
login                       a user's first login of a day (at most one per user and day)
session                     a working session after a login; ``value`` = minutes
feature_x_used              the user used feature X (the paid-option candidate)
report_created, export      the user built a report / exported results
invite_sent                 the key user invited a colleague (during onboarding)
license_activated           a seat was assigned and activated (during onboarding or a trial)
onboarding_step_completed   the key user finished an onboarding step; ``value`` = step number
training_completed          a user completed a training module
support_ticket              a support inquiry; most get a ``ticket_resolved`` within 3 days
meeting_held                a meeting with the decision maker (``user_id`` ``<account>-dm``)
webinar_attended            a user attended a webinar or user event
feature_feedback            a user sent product feedback
nps_sent                    an NPS survey went to the key user (customers, about quarterly)
nps_response                the survey's answer; ``value`` = score 0-10
roi_goal_reached            the customer's ROI goal was reached (outcome)
plan_limit_reached          the account hit a limit of its plan
trial_started               the prospect started the trial (``trial_start``)
purchase_intent             a pricing-page visit or quote request during a trial
=========================== ==================================================================

``personas``: ``account_id`` and ``persona`` (one of :data:`PERSONAS`), kept apart from the
accounts so that rules cannot read the answer.

``tickets`` and ``surveys``: the same support tickets and NPS answers as a help desk and a
survey tool would export them, with their own columns and types, to read as separate event
sources (``Sample.sources``; see ``healthrules.datasets._sources`` and the example pack
``rules/examples/b2b-saas-signals``):

================ ======================== =============================================
table            columns                  meaning
================ ======================== ====================================================
tickets          account_id, ticket_id,   one row per ticket event: ``status`` ``opened`` or
                 status, at, priority,    ``resolved``; ``at`` is ``Datetime("ms", "UTC")``;
                 handling_minutes         ``priority`` 1 (urgent) .. 4 (low); agent minutes on
                                          ``resolved`` rows
surveys          account_id, respondent,  one row per NPS answer, dated by day
                 answered_on, nps         (``answered_on`` is a ``Date``); ``nps`` 0-10
================ ======================== ====================================================
=======
Accounts over time
------------------
``sample(..., dated=True)`` gives the accounts as type-2 history instead: one row per account
and version, with ``csm`` (String, the customer success manager; null for prospects),
``valid_from`` and ``valid_to`` (Date, exclusive; null while the row holds) after the columns
above. An account exists from its contract start (customers) or trial start (prospects);
past renewals moved ``renewal_date`` on; some accounts bought seats or upgraded their plan
at a renewal (``arr`` follows); some were reassigned to another CSM; and a few customers of
the :data:`CHURN_PERSONAS` churned at a renewal in the last weeks: their last row ends then
and they have no events after it. Declare the columns in the roadmap
(``data.accounts.valid_from: valid_from``, ``valid_to: valid_to``) to read it, and
:meth:`Sample.latest` gives the one-row-per-account frame a CRM export of today would be.
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Final

import polars as pl

from healthrules.datasets._build import (
    EVENT_NAMES,
    accounts_frame,
    events_frame,
    personas_frame,
)
from healthrules.datasets._dated import CSMS, dated_accounts
from healthrules.datasets._hierarchy import PARENT_COLUMN, dated_parent_rows, parent_links
from healthrules.datasets._personas import (
    CUSTOMER_PERSONAS,
    PERSONA_SHARES,
    PERSONAS,
    TRIAL_DAYS,
    TRIAL_PERSONAS,
    account_parameters,
    assign_personas,
    company_name,
)
from healthrules.datasets._sources import surveys_frame, tickets_frame

__all__ = [
    "CHURN_PERSONAS",
    "CSMS",
    "CUSTOMER_PERSONAS",
    "DEFAULT_AS_OF",
    "EVENT_NAMES",
    "PARENT_COLUMN",
    "PERSONAS",
    "PERSONA_SHARES",
    "TRIAL_DAYS",
    "TRIAL_PERSONAS",
    "Sample",
    "renewal_outcomes",
    "sample",
    "write_sample",
]

CHURN_PERSONAS: Final = ("stalled_onboarding", "key_user_leaving", "renewal_low_usage")
"""Customer personas that churn in :func:`renewal_outcomes` (unless the noise flips them)."""

DEFAULT_AS_OF = date(2026, 6, 30)
"""The evaluation date of the default sample."""

_MAX_ACCOUNTS = 1_000_000
_MAX_DAYS = 3650


@dataclass(frozen=True)
class Sample:
    """A generated data set: usage events, accounts, the date it describes and the personas.

    Attributes
    ----------
    events
        Usage events (see the module documentation for the columns).
    accounts
        One row per account with its attributes.
    as_of
        The last day of the data; evaluate rules ``as_of`` this date.
    personas
        ``account_id`` and ``persona`` of every account.
    tickets
        The help desk's ticket events (``account_id``, ``ticket_id``, ``status``, ``at``,
        ``priority``, ``handling_minutes``), a second event source.
    surveys
        The survey tool's NPS answers (``account_id``, ``respondent``, ``answered_on``,
        ``nps``), a third event source.

    Examples
    --------
    >>> from healthrules.datasets import sample
    >>> s = sample(12)
    >>> s.accounts.height, s.personas.height, s.as_of
    (12, 12, datetime.date(2026, 6, 30))
    >>> sorted(s.sources)
    ['surveys', 'tickets', 'usage']
    """

    events: pl.DataFrame
    accounts: pl.DataFrame
    as_of: date
    personas: pl.DataFrame
    tickets: pl.DataFrame
    surveys: pl.DataFrame

    @property
    def sources(self) -> dict[str, pl.DataFrame]:
        """The three event sources by the names the example pack
        ``rules/examples/b2b-saas-signals`` declares: ``usage`` (:attr:`events`),
        ``tickets`` and ``surveys``; pass it as the ``events`` of
        :func:`healthrules.evaluate`."""
        return {"usage": self.events, "tickets": self.tickets, "surveys": self.surveys}

    @property
    def dated(self) -> bool:
        """Whether :attr:`accounts` holds dated rows (``valid_from`` / ``valid_to``)."""
        return "valid_from" in self.accounts.columns

    def latest(self) -> pl.DataFrame:
        """One row per account, as a CRM export of today shows it: the last row of each
        account, without the validity columns (the accounts themselves when not dated).

        Evaluating history with it instead of the dated rows reads today's attributes at
        every date: what the backtest of a plain accounts frame does.
        """
        if not self.dated:
            return self.accounts
        return (self.accounts.sort("account_id", "valid_from")
                .group_by("account_id", maintain_order=True).last()
                .drop("valid_from", "valid_to"))


def sample(
    n_accounts: int = 200,
    *,
    seed: int = 7,
    as_of: date = DEFAULT_AS_OF,
    days: int = 180,
    dated: bool = False,
    hierarchy: bool = False,
) -> Sample:
    """Generate a reproducible sample of accounts and their usage events.

    Parameters
    ----------
    n_accounts
        Number of accounts, from 0 to 1,000,000. Every persona appears once there are at least
        as many accounts as personas (nine); the default 200 has each several times.
    seed
        Seed of every random choice: the same arguments always give the same frames.
    as_of
        The last day of the data. Every event is strictly before the midnight that ends it.
    days
        Days of history (events fall in the ``days`` days ending with ``as_of``), from 1 to
        3650. Activity is drawn as rates per week, so longer or shorter histories keep the
        same rhythm; the personas' signals (a key user's drop in the last four weeks, NPS
        surveys in the last six months, recent plan limits) are written for the default 180.
    dated
        Give the accounts as dated rows (``valid_from`` / ``valid_to``, and a ``csm``
        column): renewals, seat and plan changes, CSM reassignments and a few churns (see
        "Accounts over time" in the module documentation). Churned accounts have no events
        after their churn date; every other event is the same as with ``dated=False``.
    hierarchy
        Add a parent column, ``parent_id`` (String, after the attributes): an account
        hierarchy for roll-up
        indicators (``data.accounts.parent: parent_id``). About a third of the customers
        are groups or their subsidiaries: a group is a customer whose next two to four
        customers (by ``account_id``) are its subsidiaries, and every third group is the
        parent of the next group (a holding: three levels). Prospects and other customers
        have a null parent. Nothing else changes (the same events, attributes and
        personas as without it). With ``dated=True``, a row names the parent only while the
        parent has a valid row (a group that became a customer after its subsidiary, or
        churned, is not its parent before or after that: the row is split there), so the
        hierarchy is valid at every date.

    Returns
    -------
    Sample
        The events, accounts, ``as_of`` and personas. The default sample has about twenty
        thousand events; there are roughly a hundred events per account.

    Raises
    ------
    ValueError
        If ``n_accounts`` or ``days`` is out of range, or ``as_of`` is not a date.

    See Also
    --------
    write_sample : Generate and write the frames to Parquet files.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from healthrules.datasets import sample
    >>> s = sample(30, seed=1)
    >>> s.accounts.columns[:4]
    ['account_id', 'name', 'plan', 'seats']
    >>> s.events.columns
    ['account_id', 'user_id', 'event', 'timestamp', 'value']
    >>> s.events["timestamp"].max() < datetime(2026, 7, 1, tzinfo=timezone.utc)
    True
    >>> sample(30, seed=1).events.equals(s.events)
    True
    >>> d = sample(30, seed=1, dated=True)
    >>> d.accounts.columns[-3:], d.latest().height, d.accounts.height > 30
    (['csm', 'valid_from', 'valid_to'], 30, True)
    >>> g = sample(30, seed=1, hierarchy=True).accounts
    >>> g.columns[-1], g.drop("parent_id").equals(s.accounts), g["parent_id"].null_count() < 30
    ('parent_id', True, True)
    """
    if isinstance(n_accounts, bool) or not isinstance(n_accounts, int):
        raise ValueError(f"n_accounts must be an integer, got {n_accounts!r}")
    if not 0 <= n_accounts <= _MAX_ACCOUNTS:
        raise ValueError(f"n_accounts must be between 0 and {_MAX_ACCOUNTS:,}, got {n_accounts}")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _MAX_DAYS:
        raise ValueError(f"days must be an integer from 1 to {_MAX_DAYS}, got {days!r}")
    if not isinstance(as_of, date) or isinstance(as_of, datetime):
        raise ValueError(f"as_of must be a date (not a datetime), got {as_of!r}")
    rng = random.Random(seed)
    personas = assign_personas(n_accounts, rng)
    width = max(6, len(str(n_accounts)))
    ids = [f"A{i + 1:0{width}d}" for i in range(n_accounts)]
    names = [company_name(rng) for _ in range(n_accounts)]
    params = [account_parameters(p, rng, as_of=as_of, days=days) for p in personas]
    events = events_frame(params, ids, seed=seed, as_of=as_of, days=days)
    accounts = accounts_frame(params, ids, names)
    persona_frame = personas_frame(params, ids)
    if hierarchy:
        links = parent_links(accounts, seed=seed)
        accounts = accounts.with_columns(pl.Series(
            PARENT_COLUMN, [links.get(i) for i in accounts["account_id"]], dtype=pl.String))
    if dated:
        accounts, churned = dated_accounts(accounts, persona_frame, seed=seed, as_of=as_of,
                                           churn_personas=CHURN_PERSONAS)
        if hierarchy:  # a row names its parent only while the parent has a valid row
            accounts = dated_parent_rows(accounts)
        if churned:  # no events once the account is gone
            ends = pl.DataFrame({"account_id": list(churned), "__gone": list(churned.values())},
                                schema={"account_id": pl.String, "__gone": pl.Date})
            events = events.join(ends, on="account_id", how="left", maintain_order="left").filter(
                pl.col("__gone").is_null() | (pl.col("timestamp").dt.date() < pl.col("__gone"))
            ).drop("__gone")
    return Sample(events=events, accounts=accounts, as_of=as_of, personas=persona_frame,
                  tickets=tickets_frame(events, seed), surveys=surveys_frame(events))


def renewal_outcomes(
    data: Sample,
    *,
    renewal_date: date | None = None,
    flip: float = 0.1,
    seed: int = 7,
) -> pl.DataFrame:
    """Renewal outcomes for the customers of a sample, to try :func:`healthrules.history.backtest`.

    Every customer (not the trial prospects) renews on ``renewal_date`` (default: the sample's
    ``as_of``), as if all contracts came up for renewal on the last day of the data. In a
    dated sample, a customer that is gone churned on the day its last row ended. The
    personas decide the outcome: :data:`CHURN_PERSONAS` churn, the others renew, and a share
    ``flip`` of the accounts, drawn with ``seed``, goes the other way (a healthy account lost
    to a merger, a weak one kept by a long contract), so the scores cannot separate them
    perfectly. The outcome comes from the personas the rules never see, so a backtest on it
    is a fair exercise of the report; it says nothing about a real customer base.

    Parameters
    ----------
    data
        A sample from :func:`sample`.
    renewal_date
        The date of every renewal (default ``data.as_of``).
    flip
        The share of outcomes turned the other way, from 0 to 1.
    seed
        Seed of the flips.

    Returns
    -------
    polars.DataFrame
        ``account_id``, ``renewal_date`` (Date), ``outcome`` (``renewed`` or ``churned``) and
        ``arr`` (Float64): the columns :func:`~healthrules.history.backtest` reads.

    Raises
    ------
    ValueError
        If ``flip`` is not between 0 and 1.

    Examples
    --------
    >>> from healthrules.datasets import renewal_outcomes, sample
    >>> out = renewal_outcomes(sample(60))
    >>> out.columns
    ['account_id', 'renewal_date', 'outcome', 'arr']
    >>> sorted(out["outcome"].unique())
    ['churned', 'renewed']
    """
    if isinstance(flip, bool) or not isinstance(flip, (int, float)) or not 0 <= flip <= 1:
        raise ValueError(f"flip must be a number from 0 to 1, got {flip!r}")
    on = renewal_date if renewal_date is not None else data.as_of
    latest = data.accounts.sort("account_id", "valid_from") if data.dated else data.accounts
    if data.dated:
        latest = latest.group_by("account_id", maintain_order=True).last()
    customers = latest.filter(pl.col("lifecycle") == "customer").join(
        data.personas, on="account_id", how="left").sort("account_id")
    rng = random.Random(seed)
    flips = [rng.random() < flip for _ in range(customers.height)]
    churns = pl.col("persona").is_in(list(CHURN_PERSONAS)) != pl.Series(flips, dtype=pl.Boolean)
    day = pl.lit(on, dtype=pl.Date)
    if data.dated:  # an account that is gone churned on the day its last row ended
        gone = pl.col("valid_to").is_not_null()
        churns = churns | gone
        day = pl.when(gone).then(pl.col("valid_to")).otherwise(day)
    return customers.select(
        "account_id",
        day.alias("renewal_date"),
        pl.when(churns).then(pl.lit("churned")).otherwise(pl.lit("renewed")).alias("outcome"),
        pl.col("arr").cast(pl.Float64),
    )


def _write_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sample(
    directory: str | os.PathLike[str],
    n_accounts: int = 200,
    *,
    seed: int = 7,
    as_of: date = DEFAULT_AS_OF,
    days: int = 180,
    data: Sample | None = None,
) -> dict[str, Path]:
    """Generate a sample (or take ``data``) and write it as Parquet files, atomically.

    Writes ``events.parquet``, ``accounts.parquet``, ``personas.parquet``,
    ``tickets.parquet`` and ``surveys.parquet`` into ``directory`` (created if needed).
    Each file is first written to a temporary file in the
    same folder and then moved into place with :func:`os.replace`, so a reader never sees a
    half-written file.

    Parameters
    ----------
    directory
        Folder to write into.
    n_accounts, seed, as_of, days
        Passed to :func:`sample` (ignored when ``data`` is given).
    data
        An already generated sample to write instead.

    Returns
    -------
    dict[str, pathlib.Path]
        The path of each file, keyed ``events``, ``accounts``, ``personas``, ``tickets``
        and ``surveys``.

    Raises
    ------
    ValueError
        As :func:`sample`.
    OSError
        If the folder cannot be created or written.

    Examples
    --------
    >>> import tempfile, polars as pl
    >>> from healthrules.datasets import write_sample
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = write_sample(d, 10)
    ...     pl.read_parquet(paths["accounts"]).height
    10
    """
    s = data if data is not None else sample(n_accounts, seed=seed, as_of=as_of, days=days)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in (("events", s.events), ("accounts", s.accounts), ("personas", s.personas),
                        ("tickets", s.tickets), ("surveys", s.surveys)):
        path = folder / f"{name}.parquet"
        _write_atomically(frame, path)
        paths[name] = path
    return paths
