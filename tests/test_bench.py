"""codi-kit bench: shared stages planned once, every cell a run directory, Table 1 report and exports,
failures reported per cell, reruns compute only what is missing, and Ray gives the local results."""
import json

import pytest

from codi_kit.bench.backends import LocalBackend, RayBackend
from codi_kit.bench.grid import load_grid
from codi_kit.bench.paper import paper_value
from codi_kit.bench.runner import run_bench
from codi_kit.bench.tasks import plan
from codi_kit.cli import main
from tiny import tiny

TINY = tiny(**{"collect.episodes": 30, "evaluate.episodes": 6, "learner.steps": 30, "learner.log_every": 10,
               "augmenter.train_steps": 20})
VOLATILE = {"timings", "reused", "versions"}  # wall time, and whether this invocation computed the stage


def test_the_plan_computes_each_shared_stage_once(tmp_path):
    grid = load_grid(None, augmenter=("none,codi", "codi-wo-com"), learner=("bc", "bc50"), seeds="0,1", profile="smoke")
    tasks, configs = plan(grid, tmp_path)
    stages = [t.stage for t in tasks]
    # per seed: one collect, one label (codi and its ablation read the same labels), one trained model
    # (compose is a sampling setting), three generated datasets; then 3 x 2 x 2 cells
    assert [stages.count(s) for s in ("collect", "label", "train", "generate", "report")] == [2, 2, 2, 6, 12]
    assert not any(t.done for t in tasks) and len(configs) == 12
    ids = [t.id for t in tasks]
    assert all(ids.index(need) < ids.index(t.id) for t in tasks for need in t.needs)
    ablation = next(c for c in configs if c.augmenter == "codi-wo-com")
    assert configs[ablation]["augmenter"] == {"name": "codi", "compose": False}


def test_bench_reports_table_1_exports_and_a_rerun_computes_nothing(tmp_path, runner):
    out = tmp_path / "bench"
    command = ["bench", *TINY, "--augmenter", "none", "--augmenter", "codi", "--learner", "bc,bc50", "--seeds", "0,1",
               "--out", str(out), "--workers", "2"]
    result = runner.invoke(main, command)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(r["status"] == "ok" for r in records)
    for record in records:  # each cell is an ordinary run directory
        cell = json.loads((out / "cells" / record["cell"] / "results.json").read_text())
        assert cell["normalized_return"] == record["results"]["normalized_return"]
        assert (cell["augmenter"], cell["learner"], cell["seed"]) == ("codi" if record["augmenter"] == "codi" else "none",
                                                                      record["learner"], record["seed"])
    collects = {r["results"]["artifacts"]["collect"] for r in records}
    assert len(collects) == 2 and len(list((out / "stages").glob("collect-*"))) == 2  # one per seed
    assert len(list((out / "stages").glob("train-*"))) == 2 and len(list((out / "stages").glob("learn-*"))) == 8

    report = (out / "report.md").read_text()
    assert "| env | learner | none | codi |" in report and "(paper 0.58 ± 0.09)" in report  # CN, BC, CODI
    bc = [r["results"]["normalized_return"] for r in records if r["learner"] == "bc" and r["augmenter"] == "none"]
    assert f"{sum(bc) / 2:.2f} ± " in report
    assert "## Generated data" in report and "| codi | 8 |" in report and "## Wall time per stage" in report
    assert (out / "bars-mpe-cn.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Aggregate statistics" in report and "### bc: 1 task(s) x 2 seed(s) (mpe/cn)" in report
    assert "| none | " in report.split("### bc50")[0].split("### bc:")[1]  # the row with P(codi > none)
    assert (out / "intervals.png").read_bytes()[:4] == b"\x89PNG" and "![intervals](intervals.png)" in report

    marl_eval = json.loads((out / "marl-eval.json").read_text())
    run = marl_eval["mpe"]["cn"]["bc+codi"]["seed_1"]
    assert len(run["absolute_metrics"]["normalized_return"]) == 6 and run["step_0"]["step_count"] == 30

    again = runner.invoke(main, command)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "bench.json").read_text())["computed"] == []
    assert (out / "results.jsonl").read_text().splitlines() == [json.dumps(r, default=str) for r in records]


def test_a_failed_cell_is_reported_and_the_others_finish(tmp_path, runner, monkeypatch):
    """The teacher's server is down: every CODI cell fails at its label stage, the Original cells finish;
    a rerun recomputes only what is missing (here, retries the failed cells and nothing else)."""
    monkeypatch.setenv("CODI_KIT_TEST_KEY", "sk-test")
    out = tmp_path / "bench"
    command = ["bench", *TINY, "--augmenter", "none,codi", "--learner", "bc", "--seeds", "0", "--labeler", "openai",
               "--set", "labeler.base_url=\"http://127.0.0.1:9/v1\"", "--set", "labeler.max_retries=0",
               "--set", "labeler.api_key_env=\"CODI_KIT_TEST_KEY\"", "--out", str(out), "--workers", "1"]
    result = runner.invoke(main, command)
    assert result.exit_code == 1, result.output
    records = {r["augmenter"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert records["none"]["status"] == "ok" and records["codi"]["status"] == "failed"
    assert "too few to distil a student" in records["codi"]["error"]
    report = (out / "report.md").read_text()
    assert "## Failed cells" in report and "mpe-cn-codi-bc-s0" in report and "| failed |" in report
    assert list((out / "errors").glob("label-*.txt"))

    again = runner.invoke(main, command)
    assert again.exit_code == 1
    summary = json.loads((out / "bench.json").read_text())
    assert summary["computed"] == [] and "cell mpe-cn-none-bc-s0" not in summary["failed"]
    assert summary["failed"][0].startswith("label-") and summary["failed"][-1] == "cell mpe-cn-codi-bc-s0"


def test_ray_gives_the_local_backends_results(tmp_path):
    ray = pytest.importorskip("ray")
    grid = load_grid(None, augmenter="none", learner="bc", seeds="0,1", profile="smoke",
                     set=[a for a in TINY[3:] if a != "--set" and not a.startswith("augmenter.")])
    local = LocalBackend(workers=2)
    try:
        by_pool = run_bench(grid, tmp_path / "local", local)
    finally:
        local.close()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        by_ray = run_bench(grid, tmp_path / "ray", RayBackend(cpus_per_task=1))
    finally:
        ray.shutdown()
    assert [r["status"] for r in by_ray] == ["ok", "ok"]
    for pooled, rayed in zip(by_pool, by_ray):
        first = json.loads((tmp_path / "local" / "cells" / pooled["cell"] / "results.json").read_text())
        second = json.loads((tmp_path / "ray" / "cells" / rayed["cell"] / "results.json").read_text())
        assert {k: v for k, v in first.items() if k not in VOLATILE} == {k: v for k, v in second.items() if k not in VOLATILE}
    assert json.loads((tmp_path / "ray" / "bench.json").read_text())["backend"] == "ray"


def test_a_plugin_setting_reaches_the_cells_whose_plugin_has_it(tmp_path, runner):
    grid = load_grid(None, augmenter="none,codi", set=["augmenter.guidance_weight=3"], profile="smoke")
    by_augmenter = {cell.augmenter: grid.config(cell)["augmenter"] for cell in grid.cells()}
    assert by_augmenter == {"none": {"name": "none"}, "codi": {"name": "codi", "guidance_weight": 3}}
    result = runner.invoke(main, ["bench", "--augmenter", "none", "--set", "augmenter.guidance_weight=3",
                                  "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "no augmenter in this grid has setting 'guidance_weight'" in result.output
    assert not (tmp_path / "b").exists()  # refused before any work


def test_figure_4_appears_when_the_grid_spans_agent_counts(tmp_path):
    from codi_kit.bench.figures import agents_figure

    def record(agents, augmenter, seed, value):
        return {"env": "mpe/cn", "agents": agents, "augmenter": augmenter, "learner": "bc", "seed": seed,
                "status": "ok", "results": {"normalized_return": value}}

    spanning = [record(n, a, s, 0.1 * n + s) for n in (3, 4, 5) for a in ("none", "codi") for s in (0, 1)]
    assert [p.name for p in agents_figure(spanning, tmp_path)] == ["agents-mpe-cn.png"]
    assert (tmp_path / "agents-mpe-cn.png").read_bytes()[:4] == b"\x89PNG"
    assert agents_figure([r for r in spanning if r["agents"] == 3], tmp_path / "one") == []


def test_every_table1_task_has_the_papers_numbers_beside_it():
    # one number per task, read back from the parsed table: a misaligned column would move it
    assert paper_value("mpe/cn", {"agents": 3}, "bc", "codi") == (0.58, 0.09)
    assert paper_value("mpe/cn", {"agents": 4}, "bc", "codi") is None  # Table 1 is N = 3 only
    assert paper_value("mpe/world", None, "omiga", "none") == (0.66, 0.10)
    assert paper_value("smax/3m", None, "bc50", "madits") == (0.36, 0.14)
    assert paper_value("smacv2/zerg_3v4", None, "omiga", "codi-w-pri") == (0.46, 0.15)


def test_bench_statistics_are_rliables_on_the_benchs_score_matrices():
    import numpy as np
    from rliable import library, metrics

    from codi_kit.bench.statistics import bench_statistics, score_matrices

    codi = {("mpe/cn", s): v for s, v in enumerate([0.5, 0.7, 0.9, 1.1])} | {("smax/3m", s): v for s, v in enumerate([0.6, 0.8, 1.0, 5.0])}
    none = {key: value - 2.0 for key, value in codi.items()}  # CODI's runs beat Original's but for the outlier's twin 3.0

    def record(env, seed, augmenter, value, status="ok"):
        return {"env": env, "agents": None, "augmenter": augmenter, "learner": "bc", "seed": seed, "status": status,
                "results": {"normalized_return": value}}

    records = [record(env, seed, "codi", v) for (env, seed), v in codi.items()]
    records += [record(env, seed, "none", v) for (env, seed), v in reversed(none.items())]  # order must not matter
    records += [record("smax/zerg_3v4", 0, "codi", 9.0), record("mpe/cn", 4, "none", 9.0)]  # a task one column lacks; a fifth seed
    records += [record("mpe/cn", 5, "codi", None, status="failed")]
    tasks, matrices = score_matrices(records)["bc"]
    assert tasks == ["mpe/cn", "smax/3m"] and matrices["codi"].tolist() == [[0.5, 0.6], [0.7, 0.8], [0.9, 1.0], [1.1, 5.0]]
    assert np.allclose(matrices["none"], matrices["codi"] - 2.0)

    [stats] = bench_statistics(records, reps=300, improvement_reps=50)
    assert (stats.learner, stats.tasks, stats.runs) == ("bc", ["mpe/cn", "smax/3m"], 4)
    # the IQM drops the outlier 5.0 with the lowest and highest quarter: mean of 0.7, 0.8, 0.9, 1.0; the mean keeps it
    assert np.isclose(stats.iqm["codi"].point, 0.85) and np.isclose(stats.mean["codi"].point, 10.6 / 8)
    # P(codi > none), per task the share of run pairs CODI wins: CN 16/16; 3m 13/16 (Original's 3.0 beats 0.6, 0.8, 1.0)
    assert np.isclose(stats.improvement["none"].point, (1 + 13 / 16) / 2) and stats.improvement["none"].high == 1.0
    assert "codi" not in stats.improvement
    np.random.seed(0)  # rliable resamples from numpy's global generator
    _, intervals = library.get_interval_estimates(matrices, lambda m: np.array([metrics.aggregate_iqm(m), metrics.aggregate_mean(m)]),
                                                  reps=300)
    assert np.allclose([stats.iqm["codi"].low, stats.iqm["codi"].high], intervals["codi"][:, 0])
    assert np.allclose([stats.mean["none"].low, stats.mean["none"].high], intervals["none"][:, 1])
    assert stats.mean["none"].low < stats.mean["none"].point < stats.mean["none"].high
    assert bench_statistics(records, reps=300, improvement_reps=50) == [stats]  # the same intervals every time


def test_without_rliable_the_bench_report_says_how_to_get_its_statistics(tmp_path, monkeypatch):
    from codi_kit.bench import report

    records = [{"env": "mpe/cn", "agents": None, "augmenter": augmenter, "learner": "bc", "seed": seed, "status": "ok",
                "cell": f"{augmenter}-{seed}", "results": {"normalized_return": 0.1 * seed, "generated_episodes": 0,
                                                           "artifacts": {"generate": f"generate-{augmenter}{seed}"}}}
               for augmenter in ("none", "codi") for seed in (0, 1)]
    summary = {"grid": {"profile": "smoke", "seeds": [0, 1]}, "backend": "local", "wall_seconds": 1.0, "computed": [], "tasks": 4}
    monkeypatch.setattr(report, "statistics_available", lambda: False)
    report.write_bench_report(tmp_path, records, summary)
    written = (tmp_path / "report.md").read_text()
    assert 'pip install \\"codi-kit[stats]\\"' not in written and 'pip install "codi-kit[stats]"' in written
    assert "IQM [95% CI]" not in written and not (tmp_path / "intervals.png").exists()
