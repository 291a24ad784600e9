"""The data contract of a pack: its roadmaps read the same frames and have distinct ids.

The roadmaps (tracks) of a pack are evaluated over one events frame and one accounts frame,
so they must agree on the account key, the type of every account attribute they share, and,
for every event source that several of them declare, its columns and the type of every value
column; they list their sources in the same order (the first is the default source of
indicators). Each needs its own id. The loader
checks this when it loads a pack, and the compiler when it compiles one (or a list of
roadmaps).
"""

from __future__ import annotations

from collections.abc import Sequence

from healthrules.errors import Code, Issue, Location
from healthrules.roadmap import AttributeType, EventColumns, Roadmap

__all__ = ["pack_issues"]


def pack_issues(roadmaps: Sequence[Roadmap]) -> list[Issue]:
    """The ways the roadmaps of a pack break its data contract (empty when they agree).

    Each issue is located by the roadmap's ``source`` file and the YAML path of what
    disagrees; the first roadmap is the reference.

    Parameters
    ----------
    roadmaps
        The tracks, in routing order.

    Returns
    -------
    list of Issue
        Repeated ids, another default source, account key or columns of a source than the
        first roadmap that declares it, an
        attribute given two types, a value column given another type than in the first
        roadmap; in roadmap order.

    Examples
    --------
    >>> from healthrules.roadmap import Roadmap
    >>> def track(id, plan_type):
    ...     return Roadmap.model_validate({
    ...         "id": id, "goal": "g", "stages": [{"id": "s"}],
    ...         "data": {"accounts": {"attributes": {"plan": plan_type}}}})
    >>> pack_issues([track("a", "str"), track("b", "str")])
    []
    >>> [i.message for i in pack_issues([track("a", "str"), track("b", "int")])]
    ["attribute 'plan' is int here but str in another roadmap of the pack"]
    """
    issues: list[Issue] = []
    if not roadmaps:
        return issues
    first = roadmaps[0]
    attributes: dict[str, AttributeType] = {}
    parent: str | None = None
    ids: set[str] = set()
    # each source as the first roadmap that declares it does: (roadmap, its columns)
    sources: dict[str, tuple[Roadmap, EventColumns]] = {}
    default = first.data.default_source
    for r in roadmaps:
        if r.id in ids:
            issues.append(Issue(code=Code.DUPLICATE_ID.value,
                                message=f"roadmap id {r.id!r} appears twice in the pack",
                                location=Location(file=r.source, path="id")))
        ids.add(r.id)
        acc = r.data.accounts
        if r.data.default_source != default:
            issues.append(Issue(
                code=Code.VALIDATION.value,
                message=f"the default event source of roadmap {r.id!r} is "
                f"{r.data.default_source!r} but {default!r} in {first.id!r}; the roadmaps of a "
                "pack list their event sources in the same order (the first is the default)",
                location=Location(file=r.source, path="data.events")))
        if (acc.key, acc.validity) != (first.data.accounts.key, first.data.accounts.validity):
            issues.append(Issue(
                code=Code.VALIDATION.value,
                message=f"roadmap {r.id!r} declares another account key than {first.id!r} "
                "(or other account validity columns); the roadmaps of a pack read the same "
                "frames",
                location=Location(file=r.source, path="data.accounts.key")))
        if acc.parent is not None:
            if parent is not None and parent != acc.parent:
                issues.append(Issue(
                    code=Code.VALIDATION.value,
                    message=f"roadmap {r.id!r} reads the parent key from column {acc.parent!r}, "
                    f"another roadmap of the pack from {parent!r}; one accounts frame has one "
                    "parent column",
                    location=Location(file=r.source, path="data.accounts.parent")))
            parent = parent or acc.parent
        for name, typ in acc.attributes.items():
            if attributes.setdefault(name, typ) != typ:
                issues.append(Issue(
                    code=Code.VALIDATION.value,
                    message=f"attribute {name!r} is {typ} here but {attributes[name]} in another "
                    "roadmap of the pack",
                    location=Location(file=r.source, path=f"data.accounts.attributes.{name}")))
        for name, ev in r.data.sources.items():
            path = r.data.source_path(name)
            seen = sources.setdefault(name, (r, ev))
            ref_r, f_ev = seen
            what = "event columns" if not r.data.named_sources else (
                f"columns for event source {name!r}")
            if (ev.account, ev.user, ev.event, ev.timestamp, ev.timezone) != (
                f_ev.account, f_ev.user, f_ev.event, f_ev.timestamp, f_ev.timezone
            ):
                issues.append(Issue(
                    code=Code.VALIDATION.value,
                    message=f"roadmap {r.id!r} declares other {what} than {ref_r.id!r}; "
                    "the roadmaps of a pack read the same frames",
                    location=Location(file=r.source, path=path)))
            for vname, vtyp in ev.values.items():
                if f_ev.values.get(vname, vtyp) != vtyp:
                    issues.append(Issue(
                        code=Code.VALIDATION.value,
                        message=f"value column {vname!r} has another type in {ref_r.id!r}",
                        location=Location(file=r.source, path=f"{path}.values.{vname}")))
    issues.extend(_attribute_issues(roadmaps))
    issues.extend(_indicator_issues(roadmaps))
    return issues


def _event_columns(r: Roadmap) -> set[str]:
    return {c for ev in r.data.sources.values()
            for c in (ev.account, ev.user, ev.event, ev.timestamp, *ev.values) if c is not None}


def _attribute_issues(roadmaps: Sequence[Roadmap]) -> list[Issue]:
    """A roadmap's attribute must not have the name of an event column of another roadmap
    of the pack: the events frame has that column, and filters read both (a filter
    ``qty >= 1`` of a roadmap whose attribute is ``qty`` read the events' ``qty`` of
    another roadmap's contract, where its derived indicators read the attribute). A
    roadmap's own event columns are checked by its own analysis."""
    issues: list[Issue] = []
    columns: dict[str, str] = {}
    for r in roadmaps:
        for c in sorted(_event_columns(r)):
            columns.setdefault(c, r.id)
    for r in roadmaps:
        own = _event_columns(r)
        for name in r.data.accounts.attributes:
            if name in columns and name not in own:
                issues.append(Issue(
                    code=Code.NAME_CLASH.value,
                    message=f"account attribute {name!r} has the name of an event column of "
                    f"roadmap {columns[name]!r} of the pack; the roadmaps of a pack read one "
                    "events frame, and filters read both",
                    location=Location(file=r.source, path=f"data.accounts.attributes.{name}"),
                    hint="rename one of them"))
    return issues


def _indicator_issues(roadmaps: Sequence[Roadmap]) -> list[Issue]:
    """The evaluation's ``indicators`` frame has one column per indicator id over the
    roadmaps of the pack, and every roadmap reads one accounts frame: an id declared by
    several roadmaps must have one type in all of them (an int column stacked with a float
    one became a float, 2**53 + 1 read as 2**53; a datetime or a date became its integer,
    a bool 0 / 1), and must not name a column of the accounts frame that another roadmap
    declares (an attribute, the parent or a validity column: a count named ``seats`` read
    the ``seats`` attribute of the accounts frame in place of its events)."""
    from healthrules.analysis import analysis_of  # the analysis imports the format only

    issues: list[Issue] = []
    columns: dict[str, list[str]] = {}
    for r in roadmaps:
        acc = r.data.accounts
        for name in (*acc.attributes, *([acc.parent] if acc.parent else []), *acc.validity):
            columns.setdefault(name, []).append(r.id)
    types: dict[str, tuple[str, str]] = {}
    for r in roadmaps:
        found = analysis_of(r).indicator_types
        for k, ind in enumerate(r.indicators):
            where = Location(file=r.source, path=f"indicators[{k}].id")
            others = [i for i in columns.get(ind.id, []) if i != r.id]
            if others:  # its own attribute of that name is the roadmap's own error
                issues.append(Issue(
                    code=Code.NAME_CLASH.value,
                    message=f"indicator {ind.id!r} has the name of a column of the accounts "
                    f"frame that roadmap {others[0]!r} of the pack reads; the roadmaps "
                    "of a pack read one accounts frame and give one indicators frame",
                    location=where, hint="rename the indicator"))
                continue
            typ = found.get(ind.id)
            if typ is None:
                continue
            seen = types.setdefault(ind.id, (typ, r.id))
            if seen[0] != typ:
                issues.append(Issue(
                    code=Code.NAME_CLASH.value,
                    message=f"indicator {ind.id!r} is {typ} here but {seen[0]} in roadmap "
                    f"{seen[1]!r} of the pack; the indicators frame has one column per "
                    "indicator id, of one type",
                    location=where, hint="rename one of them, or give them one type "
                    "(an int expression becomes a float with `* 1.0`)"))
    return issues
