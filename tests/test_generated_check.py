"""A run whose generated data is no better than the dataset says so."""
from codi_kit.data.collect import collect
from codi_kit.report.generated_check import compare_with_dataset, verdict
from codi_kit.report.run_report import run_table, write_run_report


def test_random_play_is_flagged_and_expert_play_is_not(cn_env, cn_dataset):
    random_play = compare_with_dataset(cn_env, collect(cn_env, "random", 20, seed=5), cn_dataset)
    expert_play = compare_with_dataset(cn_env, collect(cn_env, "balanced", 20, seed=5), cn_dataset)
    assert random_play["measure"] == "expert_agreement"
    assert random_play["generated"] < random_play["dataset"] < expert_play["generated"]
    assert not random_play["better"] and expert_play["better"]
    assert "no better than the dataset" in verdict(random_play) and verdict(expert_play) is None


def test_the_run_report_and_table_carry_the_warning(cn_env, cn_dataset, tmp_path):
    check = compare_with_dataset(cn_env, collect(cn_env, "random", 20, seed=5), cn_dataset)
    results = {"env": "mpe/cn", "generated_versus_dataset": check, "normalized_return": 0.1, "return_mean": -60.0,
               "return_std": 5.0, "evaluation_episodes": 10, "greedy": True}
    write_run_report(tmp_path, results, {})
    assert "no better than the dataset" in (tmp_path / "report.md").read_text()
    rows = [cell for column in run_table(results).columns if column.header == "quantity" for cell in column._cells]
    assert "agreement with the expert: generated / dataset" in rows
