"""Behaviour cloning: a shared MLP policy (agent-id one-hot) fit by cross-entropy on the
dataset's actions among the available ones, early-stopped on held-out episodes."""
from __future__ import annotations

import copy

import attrs
import torch
import torch.nn.functional as F

import codi_kit
from codi_kit.learn import Learner
from codi_kit.nets import SharedAgentNetwork, masked_logits
from codi_kit.progress import progress_bar
from codi_kit.replay import split_episodes, transitions
from codi_kit.torch_policy import LogitsPolicy
from codi_kit.torch_utils import seed_everything


class BehaviourCloning(Learner):
    # Calibrated on imbalanced CN: 5k steps at 2k episodes, longer overfits (learners issue).
    PROFILES = {"smoke": {"steps": 300, "validate_every": 100}, "quick": {"steps": 5000},
                "paper": {"steps": 50000, "validate_every": 1000}}

    @attrs.frozen
    class Config:
        hidden: int = 256
        layers: int = 2
        learning_rate: float = 1e-3
        batch_size: int = 512
        steps: int = 5000
        validation_fraction: float = 0.1  # held-out episodes for early stopping
        validate_every: int = 250

    def fit(self, request):
        config, context = self.config, request.context
        seed_everything(context.seed)
        dataset = request.dataset
        train_episodes, validation_episodes = split_episodes(dataset, config.validation_fraction, context.seed)
        train = transitions(dataset, context.device, train_episodes)
        validation = transitions(dataset, context.device, validation_episodes) if len(validation_episodes) else None
        spec = context.env.spec
        network = SharedAgentNetwork(spec.obs_dim, spec.agents, spec.actions, config.hidden, config.layers).to(context.device)
        optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
        generator = torch.Generator().manual_seed(context.seed)

        def loss_of(batch):
            logits = masked_logits(network(batch["obs"]), batch["avail"])
            return F.cross_entropy(logits.flatten(0, -2), batch["actions"].flatten())

        best = (float("inf"), copy.deepcopy(network.state_dict()), 0)
        with progress_bar(config.steps, "learn bc") as bar:
            for step in range(1, config.steps + 1):
                loss = loss_of(train.sample(config.batch_size, generator))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                bar.advance()
                if step % config.validate_every == 0 or step == config.steps:
                    record = {"step": step, "loss": loss.item()}
                    if validation is not None:
                        with torch.no_grad():
                            record["validation_loss"] = float(loss_of(validation.take(torch.arange(len(validation), device=context.device))))
                        if record["validation_loss"] < best[0]:
                            best = (record["validation_loss"], copy.deepcopy(network.state_dict()), step)
                    context.log_metrics(record)
                    bar.update(loss=record["loss"], val=record.get("validation_loss", float("nan")))
        if validation is not None:
            network.load_state_dict(best[1])
            context.log_metrics({"best_step": best[2], "best_validation_loss": best[0]})
        return LogitsPolicy(network, context.device)

    def save(self, policy, folder):
        policy.save(folder)

    def load(self, folder, context):
        return LogitsPolicy.load(folder, context.device)


@codi_kit.hookimpl
def register_learners(register):
    register("bc", BehaviourCloning)
