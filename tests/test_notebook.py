"""docs/walkthrough.ipynb runs top to bottom without errors and shows what it promises."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("altair")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "walkthrough.ipynb"


@pytest.fixture(scope="module")
def executed() -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def tagged(nb: Any, tag: str) -> Any:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r}"
    return cells[0]


def text_of(cell: Any) -> str:
    """Everything the cell printed or displayed, as text (HTML included)."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts += [v if isinstance(v, str) else str(v) for v in out.data.values()]
    return "\n".join(parts)


def test_committed_notebook_is_valid_and_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_every_cell_runs_without_error(executed: Any) -> None:
    for cell in executed.cells:
        if cell.cell_type == "code":
            assert all(o.output_type != "error" for o in cell.outputs)
            assert cell.execution_count is not None


def test_roadmap_and_evaluation_display_as_html(executed: Any) -> None:
    roadmap = tagged(executed, "roadmap").outputs[0].data["text/html"]
    for column in ("Achievement state", "Joint tasks", "Customer tasks", "Our tasks",
                   "Positive actions", "Challenge actions", "Every stage"):
        assert column in roadmap
    evaluation = tagged(executed, "evaluation").outputs[0].data["text/html"]
    assert "200 accounts" in evaluation
    assert "fired actions" in evaluation and "Evidence" in evaluation


def test_counts_top_actions_and_explanation(executed: Any) -> None:
    counts = text_of(tagged(executed, "counts"))
    for stage in ("trial", "onboarding", "operation", "renewal"):
        assert stage in counts
    top = text_of(tagged(executed, "top-actions"))
    assert top.splitlines()[0].split()[1] == "renewal_at_risk"
    assert "(condition" in top
    explained = text_of(tagged(executed, "explain"))
    assert "stage renewal" in explained and "(at_risk)" in explained
    assert "why this score" in explained and "renewal_at_risk [challenge]: FIRED" in explained


def test_charts_are_drawn(executed: Any) -> None:
    for tag in ("chart-score", "chart-stages", "chart-indicator"):
        out = tagged(executed, tag).outputs
        assert out, tag
        mimes = set(out[0].data)
        assert any("vegalite" in m for m in mimes) or "vega" in out[0].data.get("text/html", "")


def test_rule_change_fires_the_action_for_more_accounts(executed: Any) -> None:
    text = text_of(tagged(executed, "rule-change"))
    m = re.search(r"fires for (\d+) accounts before and (\d+) after", text)
    assert m is not None, text
    before, after = int(m.group(1)), int(m.group(2))
    assert after > before > 0
    assert "feature_x_rate" in text and "newly fired" in text
