"""OMIGA (Wang et al., NeurIPS 2023), discrete actions as on the SMAC branch of the authors' code.

Local Q_i(o_i, a_i) and V_i(o_i) are mixed by state-conditioned non-negative weights w_i(s) and a
bias b(s); the global implicit regularisation decomposes into local ones, so each agent's policy
is a weighted behaviour cloning with weights exp(w_i (Q_i - V_i) / alpha).
"""
from __future__ import annotations

import copy

import attrs
import torch

import codi_kit
from codi_kit.learn import Learner
from codi_kit.learners.nets import SharedAgentNetwork, StateMixer, masked_logits
from codi_kit.data.replay import transitions
from codi_kit.learners.torch_policy import LogitsPolicy
from codi_kit.torch_utils import adam, seed_everything
from codi_kit.learners.training import LoopSettings, clipped_step, soft_update, train_loop


class OMIGA(Learner):
    PROFILES = {"smoke": {"steps": 200, "log_every": 100}, "quick": {"steps": 10000, "evaluate_every": 2500},
                "standard": {"steps": 20000, "batch_size": 512, "log_every": 1000, "evaluate_every": 5000},
                "paper": {"steps": 100000, "log_every": 1000, "evaluate_every": 10000}}

    @attrs.frozen
    class Config(LoopSettings):
        alpha: float = 10.0  # OMIGA code (trainer_omiga.py)
        gamma: float = 0.99  # OMIGA code
        tau: float = 0.005  # OMIGA code: soft target update every step
        learning_rate: float = 5e-4  # OMIGA SMAC script: offline_lr
        batch_size: int = 128  # OMIGA SMAC script: offline_batch_size (transitions)
        hidden: int = 256  # OMIGA networks: 2 x 256
        mixer_hidden: int = 64  # OMIGA SMAC script: hyper_hidden_dim
        grad_norm_clip: float = 1.0  # OMIGA code
        z_clip: float = 10.0  # OMIGA code clamps z to [-10, 10]

    def fit(self, request):
        config, context = self.config, request.context
        seed_everything(context.seed)
        data = transitions(request.dataset, context.device, actions=context.env.spec.actions)
        nets = OmigaNetworks(context.env.spec, data.state.shape[-1], config).to(context.device)
        generator = torch.Generator().manual_seed(context.seed)

        def update(step):
            return nets.update(data.sample(config.batch_size, generator), config)

        policy = LogitsPolicy(nets.actor, context.device)
        train_loop(request, config, update, lambda: policy, "learn omiga")
        return policy


class OmigaNetworks(torch.nn.Module):
    """Local Q_i, V_i and the actor (shared over agents), the state mixer, their targets and optimisers."""

    def __init__(self, spec, state_dim: int, config: OMIGA.Config):
        super().__init__()

        def network(outputs):
            return SharedAgentNetwork(spec.obs_dim, spec.agents, outputs, config.hidden, 2)

        self.q, self.v, self.actor = network(spec.actions), network(1), network(spec.actions)
        self.mixer = StateMixer(state_dim, spec.agents, config.mixer_hidden)
        self.target_q, self.target_v, self.target_mixer = copy.deepcopy(self.q), copy.deepcopy(self.v), copy.deepcopy(self.mixer)
        self.q_parameters = list(self.q.parameters()) + list(self.mixer.parameters())
        self.q_optimizer = adam(self.q_parameters, config.learning_rate)
        self.v_optimizer = adam(self.v.parameters(), config.learning_rate)
        self.actor_optimizer = adam(self.actor.parameters(), config.learning_rate)

    def advantage(self, batch, config) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z_i = w_i(s) (Q_i(o_i, a_i) - V_i(o_i)) / alpha [B,N] from the target Q and mixer, w_i(s), V_i(o_i)."""
        with torch.no_grad():
            weights, _ = self.target_mixer(batch["state"])
            q_taken = self.target_q(batch["obs"]).gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)
        values = self.v(batch["obs"]).squeeze(-1)
        return ((weights * q_taken - weights * values) / config.alpha).clamp(-config.z_clip, config.z_clip), weights, values

    def update(self, batch, config) -> dict:
        actions = batch["actions"].unsqueeze(-1)  # [B,N,1]
        # Q_tot(s, a) = sum_i w_i(s) Q_i(o_i, a_i) + b(s), regressed on r + gamma V_tot(s')
        weights, bias = self.mixer(batch["state"])
        q_taken = self.q(batch["obs"]).gather(-1, actions).squeeze(-1)  # [B,N]
        q_total = (weights * q_taken).sum(-1) + bias.squeeze(-1)
        with torch.no_grad():
            next_weights, next_bias = self.target_mixer(batch["next_state"])
            v_next_total = (next_weights * self.target_v(batch["next_obs"]).squeeze(-1)).sum(-1) + next_bias.squeeze(-1)
            q_target = batch["rewards"] + config.gamma * (1 - batch["done"]) * v_next_total
        q_loss = ((q_total - q_target) ** 2).mean()

        # local regularised advantage z_i; V_i minimises E[exp(z_i) + w_i V_i / alpha] (OMIGA's implicit value)
        z, target_weights, values = self.advantage(batch, config)
        max_z = z.max().clamp(min=-1.0).detach()
        v_loss = (torch.exp(z - max_z) + torch.exp(-max_z) * target_weights * values / config.alpha).mean()

        # weighted behaviour cloning with weights exp(z_i), over available actions
        log_probabilities = torch.log_softmax(masked_logits(self.actor(batch["obs"]), batch["avail"]), -1)
        actor_loss = -(torch.exp(z).detach() * log_probabilities.gather(-1, actions).squeeze(-1)).mean()

        clipped_step(self.actor_optimizer, actor_loss, self.actor.parameters(), config.grad_norm_clip)
        clipped_step(self.q_optimizer, q_loss, self.q_parameters, config.grad_norm_clip)
        clipped_step(self.v_optimizer, v_loss, self.v.parameters(), config.grad_norm_clip)
        for target, source in ((self.target_q, self.q), (self.target_v, self.v), (self.target_mixer, self.mixer)):
            soft_update(target, source, config.tau)
        return {"q_loss": q_loss.detach(), "v_loss": v_loss.detach(), "actor_loss": actor_loss.detach(),
                "z_std": z.detach().std(), "z_max": z.detach().max()}  # how strongly the actor reweights


@codi_kit.hookimpl
def register_learners(register):
    register("omiga", OMIGA)
