"""The example rule packs under rules/examples/ load cleanly and do what their README says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import healthrules as hr
from healthrules.datasets import PERSONAS, Sample, sample
from healthrules.loader import check_files, iter_rule_files
from healthrules.roadmap import Pack, Roadmap

EXAMPLES = Path(__file__).resolve().parent.parent / "rules" / "examples"
OWNED_ELSEWHERE = ("full-format",)
"""Sub-folders maintained separately (they have their own tests)."""

ENTRY_POINTS = (
    "b2b-saas/roadmap.yaml",
    "b2b-saas-signals/roadmap.yaml",
    "goal-tracks/pack.yaml",
    "trial-conversion/roadmap.yaml",
    "subscription-upsell/roadmap.yaml",
    "portfolio-scorecard/roadmap.yaml",
)


def _example_files() -> Iterator[Path]:
    for path in iter_rule_files([EXAMPLES]):
        if path.relative_to(EXAMPLES).parts[0] not in OWNED_ELSEWHERE:
            yield path


FILES = sorted(_example_files())


def _id(path: Path) -> str:
    return path.relative_to(EXAMPLES).as_posix()


def test_the_examples_are_found() -> None:
    found = {_id(p) for p in FILES}
    assert set(ENTRY_POINTS) <= found
    assert "goal-tracks/indicators.yaml" in found


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_every_example_file_validates(path: Path) -> None:
    (result,) = check_files([path])
    assert result.issues == (), "\n".join(str(i) for i in result.issues)
    if result.skipped:  # a rule-pack test file: the test runner checks it
        assert result.kind == "test"
    else:
        assert result.kind in ("roadmap", "pack", "library")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_entry_points_load(entry: str) -> None:
    loaded = hr.load(EXAMPLES / entry)
    roadmaps = loaded.loaded if isinstance(loaded, Pack) else [loaded]
    assert roadmaps
    for roadmap in roadmaps:
        assert isinstance(roadmap, Roadmap)
        for stage in roadmap.stages:
            assert stage.achievement is not None and stage.achievement.when, stage.id
            tasks = stage.tasks
            assert tasks.joint and tasks.customer and tasks.ours, stage.id
        for _stage, action in roadmap.all_actions():
            assert action.owner and action.channel, action.id
            assert "{" in action.do, f"{action.id}: the do text should quote a value"


def test_goal_tracks_share_a_library_and_route_by_goal() -> None:
    pack = hr.load(EXAMPLES / "goal-tracks" / "pack.yaml")
    assert isinstance(pack, Pack)
    assert [r.id for r in pack.loaded] == ["do_it_for_us", "self_sufficient"]
    for roadmap in pack.loaded:
        assert roadmap.imports and roadmap.imports[0].path == "indicators.yaml"
        assert roadmap.applies_to is not None and "goal ==" in roadmap.applies_to


def test_b2b_saas_has_the_six_domain_actions_and_all_families() -> None:
    roadmap = hr.load(EXAMPLES / "b2b-saas" / "roadmap.yaml")
    assert isinstance(roadmap, Roadmap)
    ids = {a.id for _s, a in roadmap.all_actions()}
    assert {
        "key_person_drop",
        "nps_resend",
        "first_login_low",
        "feature_x_option",
        "roi_case_study",
        "license_upsell",
    } <= ids
    assert [s.id for s in roadmap.stages] == ["trial", "onboarding", "operation", "renewal"]
    assert {i.family for i in roadmap.indicators} == {"process", "relationship", "outcome"}
    assert "onboarding" in roadmap.score.stages
    assert roadmap.score.weights.families and roadmap.score.weights.indicators


# ------------------------------------------------------------------ on the sample data


@pytest.fixture(scope="module")
def data() -> Sample:
    # the default sample with its parent column (read by portfolio-scorecard only; the same
    # events and attributes as sample())
    return sample(hierarchy=True)


@pytest.fixture(scope="module")
def fired(data: Sample) -> pl.DataFrame:
    frames = []
    for entry in ENTRY_POINTS:
        loaded = hr.load(EXAMPLES / entry)
        first = loaded.loaded[0] if isinstance(loaded, Pack) else loaded
        # a roadmap with named event sources reads the sample's usage, tickets and surveys
        events = data.sources if first.data.named_sources else data.events
        result = hr.evaluate(loaded, events, data.accounts, data.as_of)
        frames.append(result.actions.select("roadmap", "account_id", "action_id", "priority"))
    return pl.concat(frames).join(data.personas, on="account_id")


def _declared() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for entry in ENTRY_POINTS:
        loaded = hr.load(EXAMPLES / entry)
        roadmaps = loaded.loaded if isinstance(loaded, Pack) else [loaded]
        for roadmap in roadmaps:
            assert isinstance(roadmap, Roadmap)
            out.extend((roadmap.id, a.id) for _s, a in roadmap.all_actions())
    return out


DECLARED = _declared()


@pytest.mark.parametrize(("roadmap", "action"), DECLARED, ids=[f"{r}/{a}" for r, a in DECLARED])
def test_every_action_fires_on_the_default_sample(
    fired: pl.DataFrame, roadmap: str, action: str
) -> None:
    hits = fired.filter((pl.col("roadmap") == roadmap) & (pl.col("action_id") == action))
    assert hits.height >= 1, f"{roadmap}/{action} fired for no account of sample()"


@pytest.mark.parametrize(
    ("action", "persona"),
    [
        ("key_person_drop", "key_user_leaving"),
        ("nps_resend", "quiet_renewing"),
        ("first_login_low", "stalled_onboarding"),
        ("feature_x_option", "expansion_ready"),
        ("roi_case_study", "healthy_adopter"),
        ("license_upsell", "expansion_ready"),
        ("renewal_at_risk", "renewal_low_usage"),
        ("trial_stalled", "trial_just_looking"),
        ("trial_ready_to_buy", "trial_decided"),
    ],
)
def test_b2b_saas_actions_follow_the_personas(
    fired: pl.DataFrame, action: str, persona: str
) -> None:
    hits = fired.filter((pl.col("roadmap") == "b2b_saas") & (pl.col("action_id") == action))
    top = hits.group_by("persona").len().sort("len", "persona", descending=[True, False])
    assert top["persona"][0] == persona


def test_undecided_prospects_get_the_attention(fired: pl.DataFrame) -> None:
    trial = fired.filter(pl.col("roadmap") == "trial_conversion")
    by_persona = trial.group_by("persona").agg(pl.col("priority").unique())
    priorities = {r["persona"]: set(r["priority"]) for r in by_persona.iter_rows(named=True)}
    assert priorities["trial_decided"] == {"low"}
    assert priorities["trial_just_looking"] <= {"low", "critical"}
    assert priorities["trial_undecided"] & {"high", "critical"}


def test_no_upsell_for_accounts_at_risk(data: Sample, fired: pl.DataFrame) -> None:
    roadmap = hr.load(EXAMPLES / "subscription-upsell" / "roadmap.yaml")
    result = hr.evaluate(roadmap, data.events, data.accounts, data.as_of)
    offers = result.actions.filter(
        pl.col("action_id").is_in(["upgrade_plan", "add_seats", "cross_sell_option"])
    ).join(result.scores.select("account_id", "score_band"), on="account_id")
    assert offers.height > 0
    assert (offers["score_band"] == "healthy").all()
    struggling = fired.filter(
        (pl.col("roadmap") == "subscription_upsell")
        & (pl.col("action_id") == "limits_while_struggling")
    )
    assert struggling.height > 0


def test_all_personas_are_covered(fired: pl.DataFrame) -> None:
    assert set(fired["persona"].unique()) == set(PERSONAS)
