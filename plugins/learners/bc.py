"""Behaviour cloning (BC) and 50%BC: a shared policy (agent-id one-hot) fit by cross-entropy on
the dataset's actions among the available ones, early-stopped on held-out episodes. 50%BC clones
only the top half of episodes by return (Flow to Better, the paper's ref [44]).

``network = "mlp"``: an MLP on the current observation, batches of transitions. ``"gru"``: the
authors' recurrent agent (``codi_kit.learners.recurrent``: GRU over the episode, last action and agent id
in the input), batches of whole episodes.
"""
from __future__ import annotations

import copy

import attrs
import numpy as np
import torch
import torch.nn.functional as F

import codi_kit
from codi_kit.learn import Learner
from codi_kit.learners.nets import SharedAgentNetwork, masked_logits
from codi_kit.learners.recurrent import Episodes, RecurrentAgent, previous_actions
from codi_kit.data.replay import split_episodes, transitions
from codi_kit.learners.torch_policy import LogitsPolicy, RecurrentPolicy
from codi_kit.torch_utils import adam, seed_everything
from codi_kit.learners.training import LoopSettings, train_loop


def top_episodes(returns: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the best ``fraction`` of episodes by return (at least one)."""
    keep = max(1, int(round(fraction * len(returns))))
    return np.sort(np.argsort(-returns, kind="stable")[:keep])


class BehaviourCloning(Learner):
    # Calibrated on imbalanced CN: 5k steps at 2k episodes, longer overfits (learners issue).
    # standard: at 20000 episodes BC gains from 20000 updates over 5000 (the paper-scale issue,
    # benchmarks/results/paper-scale*.json); early stopping on held-out loss keeps the best of them
    PROFILES = {"smoke": {"steps": 300, "log_every": 100}, "quick": {"steps": 5000},
                "standard": {"steps": 20000, "log_every": 500},
                "paper": {"steps": 50000, "log_every": 1000, "evaluate_every": 10000}}

    @attrs.frozen
    class Config(LoopSettings):
        steps: int = 5000
        network: str = attrs.field(default="mlp", validator=attrs.validators.in_(("mlp", "gru")))
        hidden: int = 256  # the learners issue's calibration: 2 x 256 shared MLP
        layers: int = 2
        rnn_hidden: int = 64  # OffPyMARL default.yaml rnn_hidden_dim (the authors' BC agent)
        learning_rate: float = 1e-3
        batch_size: int = 512  # transitions (mlp)
        episode_batch: int = 128  # episodes (gru; the authors' offline_batch_size is 1024, a GPU's budget)
        top_fraction: float = 1.0  # share of episodes cloned, best by return first (50%BC: 0.5)
        validation_fraction: float = 0.1  # held-out episodes for early stopping
        # log_every: validation loss is measured at every log step

    def fit(self, request):
        config, context = self.config, request.context
        seed_everything(context.seed)
        dataset = request.dataset
        if config.top_fraction < 1.0:
            dataset = dataset.select(top_episodes(dataset.returns(), config.top_fraction))
        train_episodes, validation_episodes = split_episodes(dataset, config.validation_fraction, context.seed)
        spec = context.env.spec
        generator = torch.Generator().manual_seed(context.seed)
        if config.network == "gru":
            network = RecurrentAgent(spec.obs_dim, spec.agents, spec.actions, config.rnn_hidden).to(context.device)
            train = Episodes(dataset.select(train_episodes), context.device, spec.actions)
            validation = Episodes(dataset.select(validation_episodes), context.device, spec.actions) \
                if len(validation_episodes) else None

            def loss_of(batch):  # cross-entropy on every transition of the episodes
                logits, _ = network(batch.obs, previous_actions(batch.actions))
                logits = masked_logits(logits, batch.avail)[batch.valid]
                return F.cross_entropy(logits.flatten(0, -2), batch.actions[batch.valid].flatten())

            def draw():
                return train.sample(config.episode_batch, generator)

            def held_out():
                return validation.take(np.arange(len(validation)))

            def make_policy():
                return RecurrentPolicy(network, context.device)
        else:
            network = SharedAgentNetwork(spec.obs_dim, spec.agents, spec.actions, config.hidden, config.layers).to(context.device)
            train = transitions(dataset, context.device, train_episodes, actions=spec.actions)
            validation = transitions(dataset, context.device, validation_episodes, actions=spec.actions) \
                if len(validation_episodes) else None
            read = ("obs", "avail", "actions")  # the fields of a transition BC uses

            def loss_of(batch):
                logits = masked_logits(network(batch["obs"]), batch["avail"])
                return F.cross_entropy(logits.flatten(0, -2), batch["actions"].flatten())

            def draw():
                return train.sample(config.batch_size, generator, read)

            def held_out():
                return validation.take(torch.arange(len(validation), device=context.device), read)

            def make_policy():
                return LogitsPolicy(network, context.device)
        optimizer = adam(network.parameters(), config.learning_rate)

        def update(step):
            loss = loss_of(draw())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return {"loss": loss.detach()}

        best = {"loss": float("inf"), "state": copy.deepcopy(network.state_dict()), "step": 0}

        def validate(step, record):
            if validation is None:
                return
            with torch.no_grad():
                record["validation_loss"] = float(loss_of(held_out()))
            if record["validation_loss"] < best["loss"]:
                best.update(loss=record["validation_loss"], state=copy.deepcopy(network.state_dict()), step=step)

        policy = make_policy()
        train_loop(request, config, update, lambda: policy, f"learn bc ({config.network})", on_log=validate)
        network.load_state_dict(best["state"] if validation is not None else network.state_dict())
        context.log_metrics({"best_step": best["step"], "best_validation_loss": best["loss"],
                             "episodes_cloned": dataset.episodes})
        return make_policy()


class HalfBehaviourCloning(BehaviourCloning):
    """50%BC: behaviour cloning on the top half of episodes by return."""

    @attrs.frozen
    class Config(BehaviourCloning.Config):
        top_fraction: float = 0.5


@codi_kit.hookimpl
def register_learners(register):
    register("bc", BehaviourCloning)
    register("bc50", HalfBehaviourCloning)
