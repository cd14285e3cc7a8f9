"""OMAR (Pan et al., ICML 2022) for discrete actions, after OffPyMARL's discrete variant.

Per-agent conservative critics (CQL, two heads, clipped double-Q targets) see the global state
and the agent's observation; the actor loss mixes a policy-gradient term with OMAR's zeroth-order
term, a cross-entropy toward the critic's best available action. With a handful of discrete
actions the zeroth-order search (CEM in the paper) is exact: the best action is enumerated.

Variant: the policy-gradient term is the exact gradient of E_{a~pi}[Q_i(s, o_i, a)], the discrete
counterpart of OMAR's deterministic gradient of Q_i(s, o_i, mu(o_i)); OffPyMARL instead weights
log pi of dataset actions by a COMA advantage, which adds sampling noise for no benefit here.
Critic targets are one-step (OffPyMARL uses TD(lambda) over whole episodes).
"""
from __future__ import annotations

import copy

import attrs
import torch
import torch.nn.functional as F

import codi_kit
from codi_kit.learn import Learner
from codi_kit.learners.nets import SharedAgentNetwork, masked_logits
from codi_kit.data.replay import transitions
from codi_kit.learners.torch_policy import LogitsPolicy
from codi_kit.torch_utils import adam, seed_everything
from codi_kit.learners.training import LoopSettings, clipped_step, train_loop


def critic_input(state: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """[B,S], [B,N,O] -> [B,N,S+O]: each agent's critic sees the global state and its observation."""
    return torch.cat([state.unsqueeze(-2).expand(-1, obs.shape[-2], -1), obs], dim=-1)


def masked_max_action(q_values: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    return masked_logits(q_values, avail).argmax(-1, keepdim=True)


class OMAR(Learner):
    PROFILES = {"smoke": {"steps": 200, "log_every": 100}, "quick": {"steps": 10000, "evaluate_every": 2500},
                "standard": {"steps": 20000, "batch_size": 512, "log_every": 1000, "evaluate_every": 5000},
                "paper": {"steps": 100000, "log_every": 1000, "evaluate_every": 10000}}

    @attrs.frozen
    class Config(LoopSettings):
        omar_coefficient: float = 0.5  # OffPyMARL omar.yaml omar_coe (OMAR paper: 0.5 on MPE too)
        cql_alpha: float = 5.0  # OffPyMARL omar.yaml
        gamma: float = 0.99  # OffPyMARL default
        learning_rate: float = 1e-3  # OffPyMARL omar.yaml lr
        critic_learning_rate: float = 1e-3  # OffPyMARL omar.yaml critic_lr
        batch_size: int = 128  # OffPyMARL omar.yaml
        hidden: int = 256  # OffPyMARL critic_hidden_dim
        target_update_interval: int = 200  # OffPyMARL omar.yaml: hard copy every 200 updates
        grad_norm_clip: float = 10.0  # OffPyMARL default grad_norm_clip

    def fit(self, request):
        config, context = self.config, request.context
        seed_everything(context.seed)
        spec = context.env.spec
        data = transitions(request.dataset, context.device)
        critic_obs = data.state.shape[-1] + spec.obs_dim
        actor = SharedAgentNetwork(spec.obs_dim, spec.agents, spec.actions, config.hidden, 2).to(context.device)
        critics = torch.nn.ModuleList(
            [SharedAgentNetwork(critic_obs, spec.agents, spec.actions, config.hidden, 2) for _ in range(2)]).to(context.device)
        target_actor, target_critics = copy.deepcopy(actor), copy.deepcopy(critics)
        actor_optimizer = adam(actor.parameters(), config.learning_rate)
        critic_optimizer = adam(critics.parameters(), config.critic_learning_rate)
        generator = torch.Generator().manual_seed(context.seed)

        def update(step):
            batch = data.sample(config.batch_size, generator)
            actions = batch["actions"].unsqueeze(-1)
            inputs, avail = critic_input(batch["state"], batch["obs"]), batch["avail"]
            # critics: clipped double-Q target at the target policy's greedy next action, plus CQL
            with torch.no_grad():
                next_inputs = critic_input(batch["next_state"], batch["next_obs"])
                next_actions = masked_max_action(target_actor(batch["next_obs"]), batch["next_avail"])
                next_q = torch.min(*[c(next_inputs).gather(-1, next_actions) for c in target_critics]).squeeze(-1)
                target = batch["rewards"].unsqueeze(-1) + config.gamma * (1 - batch["done"]).unsqueeze(-1) * next_q
            critic_loss = 0.0
            for critic in critics:
                q_values = critic(inputs)
                q_taken = q_values.gather(-1, actions).squeeze(-1)
                conservative = torch.logsumexp(masked_logits(q_values, avail), -1) - q_taken  # CQL(H)
                critic_loss = critic_loss + F.mse_loss(q_taken, target) + config.cql_alpha * conservative.mean()
            clipped_step(critic_optimizer, critic_loss, critics.parameters(), config.grad_norm_clip)

            # actor: (1 - c) policy gradient on E_pi[Q] + c cross-entropy toward argmax_a Q (OMAR)
            with torch.no_grad():
                q_values = critics[0](inputs)
                best_actions = masked_max_action(q_values, avail).squeeze(-1)
            logits = masked_logits(actor(batch["obs"]), avail)
            probabilities = torch.softmax(logits, -1)
            policy_gradient_loss = -(probabilities * q_values).sum(-1).mean()  # unavailable actions have probability 0
            zeroth_order_loss = F.cross_entropy(logits.flatten(0, -2), best_actions.flatten())
            actor_loss = (1 - config.omar_coefficient) * policy_gradient_loss + config.omar_coefficient * zeroth_order_loss
            clipped_step(actor_optimizer, actor_loss, actor.parameters(), config.grad_norm_clip)

            if step % config.target_update_interval == 0:
                target_actor.load_state_dict(actor.state_dict())
                target_critics.load_state_dict(critics.state_dict())
            return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
                    "policy_gradient_loss": policy_gradient_loss.detach(), "zeroth_order_loss": zeroth_order_loss.detach()}

        policy = LogitsPolicy(actor, context.device)
        train_loop(request, config, update, lambda: policy, "learn omar")
        return policy


@codi_kit.hookimpl
def register_learners(register):
    register("omar", OMAR)
