"""The order table: mean over seeds per team size, the coverage rows beside it, one line per seed."""

from tests.conftest import require

require("torch")
require("vmas")

from robot_runtime_train.results.control import TEAM_SIZES  # noqa: E402
from robot_runtime_train.results.order import coverage_rows, write_markdown  # noqa: E402


def seed_row(seed, value):
    return {"seed": seed, "train_seconds": 60.0,
            "results": [{"n_agents": n, "episodes": 500, "success_rate": value} for n in TEAM_SIZES]}


def test_markdown_has_means_per_seed_rows_and_the_coverage_contrast(tmp_path):
    import json

    rows = [{"method": "diamond", "scenario": "coverage_no_contact", "seeds": [seed_row(0, 0.6), seed_row(1, 0.4)]}]
    control = tmp_path / "control.json"
    control.write_text(json.dumps({"rows": [{"method": "diamond", "seeds": [seed_row(0, 0.9)]},
                                            {"method": "mlp", "seeds": [seed_row(0, 0.0)]}]}))
    contrast = coverage_rows(control, ["diamond", "dropout"])
    assert [r["method"] for r in contrast] == ["diamond"] and contrast[0]["scenario"] == "coverage"
    meta = {"date": "2026-12-04", "machine": "x86_64 CPU, 1 thread", "torch": "2.13.0", "episodes": 500,
            "seeds": [0, 1], "train_minutes_median": 1.0}
    write_markdown(rows, contrast, meta, tmp_path / "order.md")
    text = (tmp_path / "order.md").read_text()
    assert "| diamond | coverage_no_contact | 0,1 | 0.500 ± 0.141 |" in text
    assert "| diamond | coverage | 0 | 0.900 ± 0.000 |" in text
    assert "| diamond | 1 | 0.400 |" in text
    assert coverage_rows(tmp_path / "missing.json", ["diamond"]) == []
