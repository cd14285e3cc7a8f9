"""Datasets other tools wrote: OffPyMARL's H5 episode files, imported and exported."""
import json

import h5py
import numpy as np

from codi_kit.cli import main
from codi_kit.data.dataset import Dataset
from codi_kit.data.formats import offpymarl
from tiny import tiny

TINY = tiny(**{"collect.episodes": None})


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


# The original MPE (OMAR's and MADiff's data) reads a 5-vector action as the force
# (a[1] - a[2], a[3] - a[4]): index 1 pushes right, 2 left, 3 up, 4 down. Our discrete order is
# PettingZoo's: 0 no-op, 1 left, 2 right, 3 down, 4 up.
OURS_TO_MPE_VECTOR_INDEX = np.array([0, 2, 1, 4, 3])


def madiff_seed_folder(folder, dataset):
    """``dataset``'s episodes as MADiff's sequence_dataset reads them: per-agent streams of one-hot
    MPE action vectors, the team reward split over agents, every agent done at an episode's last step."""
    folder.mkdir(parents=True)
    valid = dataset.step_mask()
    for i in range(dataset.agents):
        np.save(folder / f"obs_{i}.npy", dataset.obs[:, :, i][valid])
        np.save(folder / f"acs_{i}.npy", np.eye(5, dtype=np.float32)[OURS_TO_MPE_VECTOR_INDEX[dataset.actions[:, :, i]]][valid])
        np.save(folder / f"rews_{i}.npy", (dataset.rewards / dataset.agents)[valid])
        done = np.zeros(valid.shape, bool)
        done[np.arange(dataset.episodes), dataset.lengths - 1] = True
        np.save(folder / f"dones_{i}.npy", done[valid])


def test_madiff_folders_import_with_mpe_action_vectors_mapped(tmp_path, runner, cn_dataset):
    original = cn_dataset.select(np.arange(12))
    original.lengths[:3] = [25, 9, 17]  # ended early: every agent done before the 25-step limit
    original.clear_padding()
    madiff_seed_folder(tmp_path / "simple_spread" / "expert" / "seed_0_data", original.select(np.arange(6)))
    madiff_seed_folder(tmp_path / "simple_spread" / "expert" / "seed_1_data", original.select(np.arange(6, 12)))
    out = tmp_path / "imported.npz"
    result = runner.invoke(main, ["import", "madiff", str(tmp_path / "simple_spread" / "expert"), "--env", "mpe/cn",
                                  "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = Dataset.load(out)
    np.testing.assert_array_equal(data.lengths, original.lengths)
    np.testing.assert_array_equal(data.actions, original.actions)
    np.testing.assert_allclose(data.obs, original.obs)
    np.testing.assert_allclose(data.returns(), original.returns(), rtol=1e-5)
    assert data.meta["imported_from"]["folders"] == ["seed_0_data", "seed_1_data"]


def test_madiff_continuous_actions_take_the_nearest_move(tmp_path, cn_env):
    from codi_kit.data.formats import madiff

    vectors = np.array([[0, 0.9, 0.1, 0, 0], [0, 0, 0.8, 0.1, 0], [0, 0.1, 0.05, 0.9, 0], [0, 0, 0, 0.1, 0.9],
                        [0.5, 0.2, 0.1, 0.1, 0.2]], np.float32)  # right, left, up, down, a weak push: no-op
    expected = [2, 1, 4, 3, 0]
    folder = tmp_path / "seed_0_data"
    folder.mkdir()
    for i in range(3):
        np.save(folder / f"obs_{i}.npy", np.zeros((5, 18), np.float32))
        np.save(folder / f"acs_{i}.npy", vectors)
        np.save(folder / f"rews_{i}.npy", np.zeros(5, np.float32))
        np.save(folder / f"dones_{i}.npy", np.zeros(5, bool))
    data = madiff.read(folder, cn_env.spec)
    assert data.lengths.tolist() == [5]  # the stream ended before the limit: one short episode
    assert data.actions[0, :, 0].tolist() == expected


def og_marl_vault(rel_dir, dataset):
    """``dataset`` as an OG-MARL vault, written with Flashbax the way OG-MARL records one: a trajectory
    buffer holding one stream of transitions, every agent terminal at an episode's last step."""
    import flashbax as fbx
    import jax.numpy as jnp
    from flashbax.vault import Vault

    valid = dataset.step_mask()
    terminal = np.zeros(valid.shape, bool)
    terminal[np.arange(dataset.episodes), dataset.lengths - 1] = True
    per_agent = np.repeat(valid[valid][:, None], dataset.agents, 1)
    stream = {"observations": dataset.obs[valid], "actions": dataset.actions[valid].astype(np.int32),
              "rewards": np.repeat((dataset.rewards / dataset.agents)[valid][:, None], dataset.agents, 1),
              "terminals": np.repeat(terminal[valid][:, None], dataset.agents, 1).astype(np.float32),
              "truncations": np.zeros_like(per_agent, np.float32),
              "infos": {"legals": dataset.avail_actions[valid].astype(np.float32), "state": dataset.state[valid]}}
    steps = len(stream["actions"])
    buffer = fbx.make_trajectory_buffer(add_batch_size=1, max_length_time_axis=steps + 1, min_length_time_axis=1,
                                        sample_batch_size=1, sample_sequence_length=1, period=1)
    example = {k: ({kk: jnp.asarray(vv[0]) for kk, vv in v.items()} if k == "infos" else jnp.asarray(v[0]))
               for k, v in stream.items()}
    state = buffer.init(example)
    batch = {k: ({kk: jnp.asarray(vv)[None] for kk, vv in v.items()} if k == "infos" else jnp.asarray(v)[None])
             for k, v in stream.items()}
    state = buffer.add(state, batch)
    vault = Vault(vault_name="cn.vlt", experience_structure=state.experience, rel_dir=str(rel_dir), vault_uid="Good")
    vault.write(state)
    return rel_dir / "cn.vlt" / "Good"


def test_og_marl_vault_imports_episodes_from_terminal_flags(tmp_path, runner, cn_dataset):
    original = cn_dataset.select(np.arange(10))
    original.lengths[:3] = [25, 4, 13]
    original.clear_padding()
    vault = og_marl_vault(tmp_path / "vaults", original)
    out = tmp_path / "imported.npz"
    result = runner.invoke(main, ["import", "og-marl", str(vault.parent), "--env", "mpe/cn", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = Dataset.load(out)
    np.testing.assert_array_equal(data.lengths, original.lengths)
    np.testing.assert_array_equal(data.actions, original.actions)
    np.testing.assert_allclose(data.obs, original.obs)
    np.testing.assert_allclose(data.state, original.state)
    np.testing.assert_array_equal(data.avail_actions, original.avail_actions)
    np.testing.assert_allclose(data.returns(), original.returns(), rtol=1e-5)


def test_og_marl_without_flashbax_is_one_line_naming_the_extra(tmp_path, runner, monkeypatch):
    import sys

    (tmp_path / "x.vlt" / "Good").mkdir(parents=True)
    (tmp_path / "x.vlt" / "Good" / "metadata.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "flashbax.vault", None)
    result = runner.invoke(main, ["import", "og-marl", str(tmp_path / "x.vlt" / "Good"), "--env", "mpe/cn",
                                  "--out", str(tmp_path / "x.npz")])
    assert result.exit_code == 2 and "codi-kit[og-marl]" in result.output and len(result.output.strip().splitlines()) == 1


def test_madiff_folder_missing_an_agent_stream_is_one_line_naming_the_file(tmp_path, runner, cn_dataset):
    madiff_seed_folder(tmp_path / "seed_0_data", cn_dataset.select(np.arange(3)))
    (tmp_path / "seed_0_data" / "rews_2.npy").unlink()
    result = runner.invoke(main, ["import", "madiff", str(tmp_path / "seed_0_data"), "--env", "mpe/cn",
                                  "--out", str(tmp_path / "x.npz")])
    assert result.exit_code == 2 and "rews_2.npy" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.npz").exists()
