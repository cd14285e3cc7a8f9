"""Every registered learner is smoke-tested through the registry (a new one is tested the day it is added)."""
import numpy as np
import pytest
import torch

from codi_kit import plugins
from codi_kit.collect import normalization_of
from codi_kit.context import StageContext
from codi_kit.evaluate import evaluate
from codi_kit.learn import LearnRequest

SMOKE = {"steps": 40, "validate_every": 20}


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


def test_bc_is_deterministic_on_cpu(cn_dataset, cn_env, tmp_path):
    registration = plugins.lookup("learner", "bc")
    outputs = []
    for run in range(2):
        learner = plugins.configure(registration, SMOKE)
        context = StageContext(7, torch.device("cpu"), tmp_path / str(run), cn_env, "smoke")
        context.workdir.mkdir()
        policy = learner.fit(LearnRequest(cn_dataset, context))
        outputs.append(policy.network(torch.as_tensor(cn_dataset.obs[0])).detach())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)
