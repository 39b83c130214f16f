"""The transfer table: evaluations kept to resume, the markdown marks the trained-on scenario and says why not."""

from tests.conftest import make_export, require

require("torch")
require("vmas")
require("onnxruntime")

from robot_runtime_train.results.transfer import TEAM_SIZES, evaluate_on, write_markdown  # noqa: E402


def test_an_evaluation_is_kept_and_reused(tmp_path):
    onnx = make_export(tmp_path, "diamond", 4, "coverage")[2]
    results, seconds = evaluate_on(onnx, "spread_more_goals", 4, tmp_path / "work")
    assert [r["n_agents"] for r in results] == TEAM_SIZES and seconds > 0
    assert all(0.0 <= r["success_rate"] <= 1.0 for r in results)
    assert evaluate_on(onnx, "spread_more_goals", 4, tmp_path / "work") == (results, seconds)


def test_markdown_bolds_the_trained_on_scenario_and_gives_the_reason_once(tmp_path):
    ok = [{"n_agents": n, "success_rate": 0.5, "mean_steps_to_success": 40.0} for n in TEAM_SIZES]
    refused = [{"n_agents": n, "error": f"mlp takes 32 input floats; N={n}"} for n in TEAM_SIZES]
    rows = [{"policy": "diamond, trained on coverage", "trained_on": "coverage", "target": "coverage", "results": ok},
            {"policy": "diamond, trained on coverage", "trained_on": "coverage", "target": "spread", "results": ok},
            {"policy": "mlp, trained on coverage", "trained_on": "coverage", "target": "spread", "results": refused}]
    meta = {"date": "2026-12-04", "machine": "x86_64 CPU, 1 thread", "torch": "2.13.0", "episodes": 500, "seed": 7,
            "targets": ["coverage", "spread"], "eval_minutes": 1.0}
    write_markdown(rows, meta, tmp_path / "transfer.md")
    text = (tmp_path / "transfer.md").read_text()
    coverage, spread = text.split("## On spread")
    assert "| diamond, trained on coverage | **0.500** |" in coverage
    assert "| diamond, trained on coverage | 0.500 |" in spread
    assert "| mlp, trained on coverage | cannot run |" in spread
    assert text.count("mlp takes 32 input floats") == 1 and "(7 cells)" in text
