import numpy as np
import pytest

from codi_kit.cli import main
from codi_kit.data.dataset import Dataset, validate
from codi_kit.errors import DatasetError


def test_round_trip_keeps_every_field_and_metadata(cn_dataset, tmp_path):
    path = cn_dataset.save(tmp_path / "data.npz")
    loaded = Dataset.load(path)
    for name in ("obs", "actions", "rewards", "lengths", "avail_actions", "state", "expert_mask", "provenance"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(cn_dataset, name))
    assert loaded.meta["normalization"] == cn_dataset.meta["normalization"]
    assert loaded.obs.dtype == np.float32 and loaded.actions.dtype == np.int64


def test_segment_view_is_a_view_and_segments_match_the_episodes(cn_dataset):
    horizon = 8
    view = cn_dataset.segment_view("obs", horizon)
    assert np.shares_memory(view, cn_dataset.obs)
    index = cn_dataset.segment_index(horizon)
    assert len(index) == int((cn_dataset.lengths - horizon + 1).sum())
    episode, start = index[37]
    segments = cn_dataset.segments("obs", index[37:38], horizon)
    np.testing.assert_array_equal(segments[0], cn_dataset.obs[episode, start:start + horizon])


def test_return_to_go_starts_at_the_episode_return(cn_dataset):
    np.testing.assert_allclose(cn_dataset.return_to_go()[:, 0], cn_dataset.returns(), rtol=1e-5)


def test_merge_keeps_provenance_and_pads_time(cn_dataset):
    short = cn_dataset.select(np.arange(5))
    short = Dataset(obs=short.obs[:, :10], actions=short.actions[:, :10], rewards=short.rewards[:, :10],
                    lengths=np.minimum(short.lengths, 10), avail_actions=short.avail_actions[:, :10],
                    state=short.state[:, :10], provenance=np.full(5, "generated:test"))
    merged = Dataset.merge(cn_dataset, short)
    assert merged.episodes == cn_dataset.episodes + 5
    assert merged.padded_length == cn_dataset.padded_length
    assert (merged.provenance[-5:] == "generated:test").all() and (merged.provenance[:-5] == "original").all()
    assert not merged.expert_mask[-5:].any()  # generated episodes carry no ground truth
    validate(merged)
    summary = merged.summary()
    assert summary["by_provenance"]["generated:test"]["episodes"] == 5


def test_summary_reports_one_expert_per_agent_share(cn_dataset):
    summary = cn_dataset.summary()
    assert summary["episodes"] == 60 and summary["agents"] == 3
    assert abs(sum(summary["expert_share_per_agent"]) - 1.0) < 1e-6
    assert abs(sum(summary["action_share"]) - 1.0) < 1e-3


def _corrupt(cn_dataset, tmp_path, name, change):
    path = cn_dataset.save(tmp_path / f"{name}.npz")
    arrays = dict(np.load(path))
    change(arrays)
    np.savez(path, **arrays)
    return path


CORRUPTIONS = {
    "nan": (lambda a: a["obs"].__setitem__((1, 2, 0, 3), np.nan), "obs", "non-finite"),
    "shape": (lambda a: a.__setitem__("rewards", a["rewards"][:, :7]), "rewards", "dim T"),
    "dtype": (lambda a: a.__setitem__("actions", a["actions"].astype(np.float32)), "actions", "dtype"),
    "missing": (lambda a: a.pop("lengths"), "lengths", "missing"),
    "range": (lambda a: a.__setitem__("lengths", a["lengths"] + 100), "lengths", "values must lie"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_bad_file_raises_error_naming_file_and_field(cn_dataset, tmp_path, kind):
    change, field, phrase = CORRUPTIONS[kind]
    path = _corrupt(cn_dataset, tmp_path, kind, change)
    with pytest.raises(DatasetError) as error:
        Dataset.load(path)
    assert error.value.field == field and str(path) in str(error.value) and phrase in str(error.value)


def test_truncated_file_is_a_one_line_cli_error_without_traceback(cn_dataset, tmp_path, runner):
    path = cn_dataset.save(tmp_path / "data.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for command in (["dataset", str(truncated)], ["run", "--dataset", str(truncated), "--profile", "smoke",
                                                   "--quiet", "--out", str(tmp_path / "run")]):
        result = runner.invoke(main, command)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and str(truncated) in lines[0]
        assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").glob("collect-*"))


@pytest.mark.parametrize("kind", ["nan", "shape"])
def test_bad_field_is_a_one_line_cli_error(cn_dataset, tmp_path, runner, kind):
    change, field, _ = CORRUPTIONS[kind]
    path = _corrupt(cn_dataset, tmp_path, kind, change)
    result = runner.invoke(main, ["dataset", str(path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and f"field '{field}'" in result.output and str(path) in result.output


# -- files brought from elsewhere: each problem is one line naming the file and field, before any work --
def _with_meta(cn_dataset, tmp_path, name, change_arrays=None, change_meta=None):
    import json

    path = cn_dataset.save(tmp_path / f"{name}.npz")
    if change_arrays:
        arrays = dict(np.load(path))
        change_arrays(arrays)
        np.savez(path, **arrays)
    if change_meta:
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text())
        meta_path.write_text(json.dumps(change_meta(meta)))
    return path


def _set(mapping, key, value):
    mapping[key] = value
    return mapping


def _normalization(meta, **values):
    meta["normalization"].update(values)
    return meta


IMPORT_PROBLEMS = {
    "action_beyond_avail": (lambda a: a["actions"].__setitem__((0, 0, 0), 7), None, "actions", "avail_actions"),
    "action_beyond_spec": (lambda a: (a.pop("avail_actions"), a["actions"].__setitem__((0, 0, 0), 7)), None, "actions",
                           "spec.actions"),
    "zero_episodes": (lambda a: a.update({k: v[:0] for k, v in a.items()}), None, "obs", "0 episodes"),
    "zero_length_episode": (lambda a: a["lengths"].__setitem__(3, 0), None, "lengths", "length 0"),
    "metadata_not_an_object": (None, lambda m: [m], "(metadata)", "JSON object"),
    "agents_disagree": (None, lambda m: _set(m, "spec", {**m["spec"], "agents": 4}), "spec.agents", "obs has 3"),
    "obs_size_disagrees": (None, lambda m: _set(m, "spec", {**m["spec"], "obs_dim": 20}), "spec.obs_dim", "obs has 18"),
    "r_lo_not_the_mean": (None, lambda m: _normalization(m, R_lo=m["normalization"]["R_lo"] + 5), "normalization.R_lo",
                          "mean return"),
    "r_hi_not_above_r_lo": (None, lambda m: _normalization(m, R_hi=m["normalization"]["R_lo"] - 1),
                            "normalization.R_hi", "not above"),
    "obs_fewer_episodes": (lambda a: a.__setitem__("obs", a["obs"][:-5]), None, "obs", "dim E"),
}


@pytest.mark.parametrize("kind", sorted(IMPORT_PROBLEMS))
def test_a_bad_imported_file_is_one_line_naming_the_field_before_any_work(cn_dataset, tmp_path, runner, kind):
    arrays, meta, field, phrase = IMPORT_PROBLEMS[kind]
    path = _with_meta(cn_dataset, tmp_path, kind, arrays, meta)
    for command in (["dataset", str(path)], ["run", "--dataset", str(path), "--profile", "smoke", "--quiet",
                                              "--out", str(tmp_path / "run")]):
        result = runner.invoke(main, command)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and f"field '{field}'" in lines[0] and phrase in lines[0], lines
        assert path.stem in lines[0] and "Traceback" not in result.output
    assert not any((tmp_path / "run").glob("collect-*"))


def test_a_header_declaring_more_than_the_archive_holds_is_refused_before_allocating(cn_dataset, tmp_path, runner):
    import io
    import zipfile

    path = cn_dataset.save(tmp_path / "huge.npz")
    members = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            members[name] = archive.read(name)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (2_000_000, 25, 3, 18_000)})
    members["obs.npy"] = header.getvalue() + b"\0" * 64  # the header, then 64 bytes of data
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    result = runner.invoke(main, ["dataset", str(path)])
    assert result.exit_code == 2 and "field 'obs'" in result.output and "declares shape" in result.output, result.output


def test_a_file_whose_metadata_names_an_unregistered_env_is_refused(cn_dataset, tmp_path, runner):
    path = _with_meta(cn_dataset, tmp_path, "elsewhere", None, lambda m: _set(m, "env", "nowhere/env"))
    result = runner.invoke(main, ["run", "--dataset", str(path), "--profile", "smoke", "--quiet", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "field 'env'" in result.output and "nowhere/env" in result.output, result.output


def test_a_run_on_a_file_uses_the_env_its_metadata_names(tmp_path, runner):
    import json

    data = tmp_path / "cn4.npz"
    collected = runner.invoke(main, ["collect", "--profile", "smoke", "--episodes", "12", "--set", "env.agents=4",
                                     "--out", str(data), "--quiet"])
    assert collected.exit_code == 0, collected.output
    result = runner.invoke(main, ["learn", "--dataset", str(data), "--augmenter", "none", "--profile", "smoke", "--quiet", "--out",
                                  str(tmp_path / "run"), "--set", "learner.steps=3"])
    assert result.exit_code == 0, result.output  # without --env: 4 agents from the file's env_settings
    collect = json.loads(next((tmp_path / "run").glob("collect-*/meta.json")).read_text())
    assert collect["inputs"]["env"]["settings"]["agents"] == 4
