"""Webhook delivery of a daily run's changes: one JSON POST per change, retried, never sent twice.

A run that is given a webhook URL queues one delivery per change (opened, resolved,
escalated) in its own transaction (the ``deliveries`` table of the state store, keyed by the
change's idempotency key and the URL), then, once the run is committed, POSTs every pending
delivery of that URL in order, the oldest run first: the ones of this run and any that an
earlier run could not deliver. Each POST carries the key in the ``Idempotency-Key`` header
and in the body's ``idempotency_key`` field; a 2xx answer marks it delivered. Anything else
(a 5xx, a 4xx, a time-out, a refused connection) is retried with exponential backoff; when
the retries run out, delivery stops there (later changes are not sent before an earlier one)
and the rest stays pending for the next run with the same URL.

A delivered change is never sent again, also when the run of its date is run again: the key
is computed from the change (roadmap, date, account, action, change) and the delivered row
stays in the store. Only a crash between the receiver's 2xx and the store's update could send
one twice; the receiver then sees the same idempotency key.

Standard library only (``urllib.request``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from healthrules.history.store import StateStore

__all__ = [
    "PAYLOAD_FIELDS",
    "Delivery",
    "DeliveryReport",
    "Webhook",
    "deliver",
    "idempotency_key",
    "payloads",
]

PAYLOAD_FIELDS = (
    "idempotency_key", "change", "as_of", "account", "account_key", "roadmap", "rules_hash",
    "stage", "action_id", "kind", "title", "owner", "owner_role", "channel", "priority",
    "due_date", "opened_at", "days_open", "reason", "text", "evidence",
)
"""The fields of every webhook body, in order (docs/operations.md#webhooks)."""


@dataclass(frozen=True)
class Webhook:
    """Where and how to deliver changes.

    Attributes
    ----------
    url
        An ``http://`` or ``https://`` URL that receives one POST per change.
    retries
        Attempts after the first one, per delivery, within one run.
    backoff
        Seconds before the first retry; each further retry waits twice as long.
    timeout
        Seconds to wait for an answer to one POST.
    headers
        Extra request headers (for example an ``Authorization`` header).
    """

    url: str
    retries: int = 3
    backoff: float = 1.0
    timeout: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"a webhook URL is http:// or https://, got {self.url!r}")
        if self.retries < 0 or self.backoff < 0 or self.timeout <= 0:
            raise ValueError("webhook retries and backoff must be >= 0, timeout > 0")


@dataclass(frozen=True)
class Delivery:
    """What happened to one change: ``delivered`` or still ``pending`` after ``attempts``."""

    idempotency_key: str
    status: str
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """The deliveries one run attempted, in order, and how many stay pending."""

    url: str
    deliveries: tuple[Delivery, ...] = ()
    pending: int = 0

    @property
    def delivered(self) -> int:
        """How many changes were delivered by this run."""
        return sum(1 for d in self.deliveries if d.status == "delivered")

    def summary(self) -> str:
        """One line: delivered, and pending (to be retried by the next run)."""
        text = f"webhook {self.url}: {self.delivered} delivered"
        if self.pending:
            last = next((d for d in reversed(self.deliveries) if d.error), None)
            why = f" (last error: {last.error})" if last is not None else ""
            text += (f", {self.pending} pending{why}; the next run with this --webhook "
                     "retries them")
        return text


def idempotency_key(plan_id: str, as_of: dt.date, roadmap: str, action_id: str,
                    account: Any, change: str) -> str:
    """The key of one change: a SHA-256 (hex, 32 characters) of what identifies it.

    The same change of a rerun of the same date gets the same key.
    """
    text = json.dumps([plan_id, as_of.isoformat(), roadmap, action_id, account, change],
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def payloads(changes: pl.DataFrame, fired: pl.DataFrame, *, key: str, as_of: dt.date,
             plan_id: str) -> list[tuple[str, Any, str, str, str, str]]:
    """One body per change: (idempotency key, account, roadmap, action_id, change, JSON).

    ``changes`` is a run's changes frame (:attr:`healthrules.history.RunResult.changes`);
    ``fired`` the run's actions frame, which gives the evidence of the actions that fired
    on the date (a resolved action usually has none).
    """
    on = [key, "roadmap", "action_id"]
    evidence = fired.select(*on, "evidence").unique(on, keep="first", maintain_order=True)
    frame = changes.join(evidence, on=on, how="left", maintain_order="left").with_columns(
        pl.col("evidence").fill_null(pl.lit([], dtype=fired.schema["evidence"])))
    frame = frame.select(
        pl.lit(as_of.isoformat()).alias("as_of"), pl.col(key).alias("account"),
        pl.lit(key).alias("account_key"),
        *[pl.col(c) if c in frame.columns else pl.lit(None, pl.String).alias(c)
          for c in PAYLOAD_FIELDS
          if c not in ("idempotency_key", "as_of", "account", "account_key")])
    out = []
    for row, line in zip(frame.select("account", "roadmap", "action_id", "change").rows(),
                         frame.write_ndjson().splitlines(), strict=True):
        account, roadmap, action_id, change = row
        ikey = idempotency_key(plan_id, as_of, roadmap, action_id, account, change)
        body = {"idempotency_key": ikey, **json.loads(line)}
        body = {f: body.get(f) for f in PAYLOAD_FIELDS}
        out.append((ikey, account, roadmap, action_id, change, json.dumps(body)))
    return out


def _post(hook: Webhook, ikey: str, payload: str) -> str | None:
    """One POST; None when the receiver answered 2xx, else what went wrong."""
    request = urllib.request.Request(
        hook.url, data=payload.encode(), method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": ikey,
                 "User-Agent": "healthrules-webhook", **hook.headers})
    try:
        with urllib.request.urlopen(request, timeout=hook.timeout) as response:
            status = int(response.status)
            response.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except http.client.HTTPException as exc:  # a malformed answer (bad status line, ...)
        return f"bad answer ({type(exc).__name__})"
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"timed out after {hook.timeout:g}s"
        return f"cannot connect ({reason})"
    return None if 200 <= status < 300 else f"HTTP {status}"


def deliver(store: StateStore, hook: Webhook, *,
            sleep: Callable[[float], None] = time.sleep) -> DeliveryReport:
    """POST every pending change of ``hook.url`` in order, with retries and backoff.

    Each attempt is recorded in the store (attempts, last error, delivered); delivery stops
    at the first change still failing after its retries, so the receiver never gets a
    change before an earlier one.
    """
    pending = store.pending_deliveries(hook.url)
    done: list[Delivery] = []
    for index, (ikey, payload) in enumerate(pending):
        error: str | None = None
        attempts = 0
        for attempt in range(hook.retries + 1):
            if attempt:
                sleep(hook.backoff * 2 ** (attempt - 1))
            attempts += 1
            error = _post(hook, ikey, payload)
            store.record_attempt(ikey, hook.url, delivered=error is None, error=error)
            if error is None:
                break
        done.append(Delivery(ikey, "delivered" if error is None else "pending", attempts,
                             error))
        if error is not None:
            return DeliveryReport(hook.url, tuple(done), pending=len(pending) - index)
    return DeliveryReport(hook.url, tuple(done), pending=0)
