"""The pack contract: one rule, shared by the loader and the compiler."""

from __future__ import annotations

from typing import Any

import pytest

from healthrules.compiler import compile
from healthrules.errors import RoadmapError
from healthrules.pack_contract import pack_issues
from healthrules.roadmap import Roadmap


def _track(ident: str, **data: Any) -> Roadmap:
    r = Roadmap.model_validate({"id": ident, "goal": "g", "stages": [{"id": "s"}],
                                "data": data})
    return r.model_copy(update={"source": f"{ident}.yaml"})


TRACKS = [
    _track("a", accounts={"attributes": {"plan": "str", "seats": "int"}},
           events={"values": {"amount": "float"}}),
    _track("b", accounts={"attributes": {"plan": "int"}}, events={"values": {"amount": "int"}}),
    _track("c", accounts={"key": "customer_id"}),
    _track("a", events={"user": None}),
]


def test_agreeing_tracks_have_no_issue() -> None:
    assert pack_issues(TRACKS[:1]) == []
    assert pack_issues([TRACKS[0], _track("d", accounts={"attributes": {"plan": "str"}})]) == []
    assert pack_issues([]) == []


@pytest.mark.parametrize("k", range(2, len(TRACKS) + 1))
def test_the_same_issues_as_the_compiler(k: int) -> None:
    tracks = TRACKS[:k]
    with pytest.raises(RoadmapError) as exc:
        compile(tracks)
    # RoadmapError sorts its issues by position; the issues themselves are the same
    assert sorted(exc.value.issues, key=repr) == sorted(pack_issues(tracks), key=repr)
    assert pack_issues(tracks)


def test_what_is_reported_where() -> None:
    found = [(i.code, i.location.file, i.location.path) for i in pack_issues(TRACKS)]
    assert found == [
        ("validation", "b.yaml", "data.accounts.attributes.plan"),
        ("validation", "b.yaml", "data.events.values.amount"),
        ("validation", "c.yaml", "data.accounts.key"),
        ("duplicate_id", "a.yaml", "id"),
        ("validation", "a.yaml", "data.events"),
    ]
