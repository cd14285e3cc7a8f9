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
from codi_kit.nets import SharedAgentNetwork, StateMixer, masked_logits
from codi_kit.replay import transitions
from codi_kit.torch_policy import LogitsPolicy
from codi_kit.torch_utils import adam, seed_everything
from codi_kit.training import LoopSettings, clipped_step, soft_update, train_loop


class OMIGA(Learner):
    PROFILES = {"smoke": {"steps": 200, "log_every": 100}, "quick": {"steps": 10000, "evaluate_every": 2500},
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
        spec = context.env.spec
        data = transitions(request.dataset, context.device)
        state_dim = data.state.shape[-1]  # the global state when the dataset has one, else joint observations

        def network(outputs):
            return SharedAgentNetwork(spec.obs_dim, spec.agents, outputs, config.hidden, 2).to(context.device)

        q, v, actor = network(spec.actions), network(1), network(spec.actions)
        mixer = StateMixer(state_dim, spec.agents, config.mixer_hidden).to(context.device)
        target_q, target_v, target_mixer = copy.deepcopy(q), copy.deepcopy(v), copy.deepcopy(mixer)
        q_parameters = list(q.parameters()) + list(mixer.parameters())
        q_optimizer = adam(q_parameters, config.learning_rate)
        v_optimizer = adam(v.parameters(), config.learning_rate)
        actor_optimizer = adam(actor.parameters(), config.learning_rate)
        generator = torch.Generator().manual_seed(context.seed)

        def update(step):
            batch = data.sample(config.batch_size, generator)
            actions = batch["actions"].unsqueeze(-1)  # [B,N,1]
            # Q_tot(s, a) = sum_i w_i(s) Q_i(o_i, a_i) + b(s), regressed on r + gamma V_tot(s')
            weights, bias = mixer(batch["state"])
            q_taken = q(batch["obs"]).gather(-1, actions).squeeze(-1)  # [B,N]
            q_total = (weights * q_taken).sum(-1) + bias.squeeze(-1)
            with torch.no_grad():
                next_weights, next_bias = target_mixer(batch["next_state"])
                v_next_total = (next_weights * target_v(batch["next_obs"]).squeeze(-1)).sum(-1) + next_bias.squeeze(-1)
                q_target = batch["rewards"] + config.gamma * (1 - batch["done"]) * v_next_total
            q_loss = ((q_total - q_target) ** 2).mean()

            # local regularised advantage z_i = w_i (Q_i - V_i) / alpha, from target Q and mixer
            with torch.no_grad():
                target_weights, _ = target_mixer(batch["state"])
                target_q_taken = target_q(batch["obs"]).gather(-1, actions).squeeze(-1)
            values = v(batch["obs"]).squeeze(-1)
            z = ((target_weights * target_q_taken - target_weights * values) / config.alpha).clamp(-config.z_clip, config.z_clip)
            max_z = z.max().clamp(min=-1.0).detach()
            v_loss = (torch.exp(z - max_z) + torch.exp(-max_z) * target_weights * values / config.alpha).mean()

            # weighted behaviour cloning with weights exp(z_i), over available actions
            log_probabilities = torch.log_softmax(masked_logits(actor(batch["obs"]), batch["avail"]), -1)
            actor_loss = -(torch.exp(z).detach() * log_probabilities.gather(-1, actions).squeeze(-1)).mean()

            clipped_step(actor_optimizer, actor_loss, actor.parameters(), config.grad_norm_clip)
            clipped_step(q_optimizer, q_loss, q_parameters, config.grad_norm_clip)
            clipped_step(v_optimizer, v_loss, v.parameters(), config.grad_norm_clip)
            for target, source in ((target_q, q), (target_v, v), (target_mixer, mixer)):
                soft_update(target, source, config.tau)
            return {"q_loss": q_loss.detach(), "v_loss": v_loss.detach(), "actor_loss": actor_loss.detach()}

        policy = LogitsPolicy(actor, context.device)
        train_loop(request, config, update, lambda: policy, "learn omiga")
        return policy


@codi_kit.hookimpl
def register_learners(register):
    register("omiga", OMIGA)
