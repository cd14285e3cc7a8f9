"""Datasets other tools wrote: OffPyMARL's H5 episode files, imported and exported."""
import json

import h5py
import numpy as np

from codi_kit.cli import main
from codi_kit.dataset import Dataset
from codi_kit.formats import offpymarl

TINY = ["--profile", "smoke", "--quiet", "--set", "evaluate.episodes=4", "--set", "learner.steps=20",
        "--set", "student.steps=20"]


def offpymarl_file(path, episodes=6, limit=25, agents=3, obs=18, actions=5, seed=0, cut=(25, 10)):
    """An H5 file as PyMARL's EpisodeBatch saves one (OffPyMARL OfflineBufferH5 reads these): every key
    [E, T+1, ...], ``filled`` up to the slot after the last action, ``terminated`` on the last
    transition of an episode that ended by itself, nothing on one cut by the time limit."""
    rng = np.random.default_rng(seed)
    steps = limit + 1
    lengths = np.array([cut[e % len(cut)] for e in range(episodes)])
    filled = np.zeros((episodes, steps, 1), np.int64)
    terminated = np.zeros((episodes, steps, 1), np.uint8)
    for e, n in enumerate(lengths):
        filled[e, :n + 1] = 1
        if n < limit:
            terminated[e, n - 1] = 1  # ended by itself; an episode of `limit` steps ran out of time
    keep = filled[..., None]
    chosen = rng.integers(0, actions, (episodes, steps, agents, 1)) * keep
    data = {"obs": rng.normal(size=(episodes, steps, agents, obs)).astype(np.float32) * keep,
            "state": rng.normal(size=(episodes, steps, agents * obs)).astype(np.float32) * filled,
            "actions": chosen, "actions_onehot": np.eye(actions, dtype=np.float32)[chosen[..., 0]] * keep,
            "avail_actions": np.ones((episodes, steps, agents, actions), np.int32),
            "reward": rng.normal(size=(episodes, steps, 1)).astype(np.float32) * filled,
            "terminated": terminated, "filled": filled}
    with h5py.File(path, "w") as handle:
        for key, value in data.items():
            handle.create_dataset(key, data=value)
    return data, lengths


def test_offpymarl_folder_imports_with_lengths_from_termination(tmp_path, runner):
    folder = tmp_path / "offpymarl"
    folder.mkdir()
    first, lengths_a = offpymarl_file(folder / "a.h5", seed=0)
    second, lengths_b = offpymarl_file(folder / "b.h5", seed=1, cut=(7,))
    out = tmp_path / "imported.npz"
    result = runner.invoke(main, ["import", "offpymarl", str(folder), "--env", "mpe/cn", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "privileged labels" in result.output  # no expert mask in the source data
    data = Dataset.load(out)
    np.testing.assert_array_equal(data.lengths, np.concatenate([lengths_a, lengths_b]))
    e, n = 1, lengths_a[1]  # a terminated episode: transitions up to the flag
    np.testing.assert_allclose(data.obs[e, :n], first["obs"][e, :n])
    np.testing.assert_array_equal(data.actions[e, :n], first["actions"][e, :n, :, 0])
    np.testing.assert_allclose(data.returns()[6:], second["reward"][:, :7, 0].sum(1), rtol=1e-5)
    assert data.meta["env"] == "mpe/cn" and data.meta["imported_from"]["files"] == ["a.h5", "b.h5"]
    run = tmp_path / "run"
    result = runner.invoke(main, ["run", "--dataset", str(out), "--env", "mpe/cn", "--augmenter", "none",
                                  "--out", str(run), *TINY])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "results.json").read_text())["dataset_episodes"] == 12


def test_export_to_offpymarl_and_back_is_identical(tmp_path, runner, cn_dataset):
    original = cn_dataset.select(np.arange(20))
    original.lengths[:5] = [25, 3, 11, 1, 24]  # episodes of different lengths, padding zeroed
    original.clear_padding()
    original.provenance[:3] = "generated:codi"
    source = original.save(tmp_path / "data.npz")
    result = runner.invoke(main, ["export", "offpymarl", str(source), "--out", str(tmp_path / "h5")])
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "h5" / "part_0.h5") as handle:  # OffPyMARL's own layout
        assert handle["obs"].shape == (20, 26, 3, 18) and handle["filled"][1, :, 0].sum() == 4
    back = offpymarl.read(tmp_path / "h5")
    for name in ("obs", "actions", "rewards", "lengths", "avail_actions", "expert_mask", "provenance"):
        mine, theirs = getattr(original, name), getattr(back, name)
        assert (mine is None and theirs is None) or np.array_equal(mine, theirs), name


def test_bad_offpymarl_file_is_one_line_naming_the_field(tmp_path, runner):
    with h5py.File(tmp_path / "bad.h5", "w") as handle:
        handle.create_dataset("obs", data=np.zeros((2, 5, 3, 18), np.float32))
        handle.create_dataset("actions", data=np.zeros((2, 5, 3, 1), np.int64))
    result = runner.invoke(main, ["import", "offpymarl", str(tmp_path / "bad.h5"), "--env", "mpe/cn",
                                  "--out", str(tmp_path / "x.npz")])
    assert result.exit_code == 2 and "reward" in result.output and "bad.h5" in result.output
    assert not (tmp_path / "x.npz").exists()
