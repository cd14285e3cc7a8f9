"""Every registered learner is smoke-tested through the registry (a new one is tested the day it is added)."""
import numpy as np
import pytest
import torch

from codi_kit import plugins
from codi_kit.data.collect import normalization_of
from codi_kit.context import StageContext
from codi_kit.envs.evaluate import evaluate
from codi_kit.learn import LearnRequest

SMOKE = {"steps": 40, "log_every": 20}


@pytest.mark.parametrize("name", [r.name for r in plugins.registrations("learner")])
def test_learner_trains_saves_loads_and_acts(name, cn_dataset, cn_env, tmp_path):
    registration = plugins.lookup("learner", name)
    known = {a.name for a in registration.factory.Config.__attrs_attrs__}
    learner = plugins.configure(registration, {k: v for k, v in SMOKE.items() if k in known})
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env, "smoke")
    policy = learner.fit(LearnRequest(cn_dataset, context))
    learner.save(policy, tmp_path)
    loaded = learner.load(tmp_path, context)
    step = cn_env.reset([0, 1])
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(policy.act(step.obs, step.avail, rng), loaded.act(step.obs, step.avail, rng))
    outcome = evaluate(cn_env, loaded, 4, 0, normalization_of(cn_dataset))
    assert np.isfinite(outcome["normalized_return"])
    sampled = evaluate(cn_env, loaded, 4, 0, normalization_of(cn_dataset), greedy=False)
    assert sampled["greedy"] is False


@pytest.mark.parametrize("name", [r.name for r in plugins.registrations("learner")])
def test_learner_is_deterministic_on_cpu(name, cn_dataset, cn_env, tmp_path):
    registration = plugins.lookup("learner", name)
    outputs = []
    for run in range(2):
        learner = plugins.configure(registration, SMOKE)
        context = StageContext(7, torch.device("cpu"), tmp_path / str(run), cn_env, "smoke")
        context.workdir.mkdir()
        policy = learner.fit(LearnRequest(cn_dataset, context))
        outputs.append(policy.network(torch.as_tensor(cn_dataset.obs[0])).detach())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)


def test_periodic_evaluation_and_losses_reach_the_metrics_log(cn_dataset, cn_env, tmp_path):
    import json

    learner = plugins.configure(plugins.lookup("learner", "omiga"), {"steps": 30, "log_every": 10, "evaluate_every": 15,
                                                                      "evaluate_episodes": 3})
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env, "smoke")
    learner.fit(LearnRequest(cn_dataset, context, normalization_of(cn_dataset)))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert all({"q_loss", "v_loss", "actor_loss"} <= set(r) for r in records)
    assert [("eval_normalized_return" in r) for r in records] == [False, False, True]


def test_top_fraction_keeps_the_best_episodes():
    from codi_kit_plugins.learners.bc import top_episodes

    returns = np.array([3.0, -1.0, 7.0, 0.0, 5.0, 2.0])
    np.testing.assert_array_equal(top_episodes(returns, 0.5), [0, 2, 4])
    assert len(top_episodes(returns, 0.01)) == 1


@pytest.mark.parametrize("name", ["omar", "omiga"])
def test_value_learners_use_cuda_when_asked(name, cn_dataset, cn_env, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    learner = plugins.configure(plugins.lookup("learner", name), SMOKE)
    policy = learner.fit(LearnRequest(cn_dataset, StageContext(0, torch.device("cuda"), tmp_path, cn_env, "smoke")))
    assert next(policy.network.parameters()).is_cuda
