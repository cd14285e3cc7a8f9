"""The auxiliary models of paper Eq. 9: inverse dynamics f_inv(o_t, o_t+1) -> a_t (per agent,
cross-entropy over available actions), forward model f_fwd(o_t, a_t) -> o_t+1 and reward model
r_fwd(o_t, a_t, o_t+1) -> r_t (joint, since agents interact); and, for an env whose actions are
not always all available (SMAC-like), an availability model f_avail(o_t) -> which actions each
agent may take (joint: in combat an attack depends on where the enemies are), so imputed actions
respect it and generated data stores its masks."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from codi_kit.learners.nets import SharedAgentNetwork, masked_logits, mlp


class DynamicsModels(nn.Module):
    """Works in normalised units of what is diffused (observations or an env's compact state);
    ``held`` [D] features (constant within an episode) are carried over by f_fwd unchanged."""

    def __init__(self, obs_dim: int, agents: int, actions: int, hidden: int = 256, held: torch.Tensor | None = None,
                 availability: bool = False):
        super().__init__()
        self.agents, self.actions = agents, actions
        self.register_buffer("held", torch.zeros(obs_dim, dtype=torch.bool) if held is None else held.clone())
        self.inverse = SharedAgentNetwork(2 * obs_dim, agents, actions, hidden, 2)
        joint = agents * obs_dim
        self.forward_model = mlp(joint + agents * actions, hidden, 2, joint)
        self.reward = mlp(2 * joint + agents * actions, hidden, 2, 1)
        self.availability = mlp(joint, hidden, 2, agents * actions) if availability else None

    def available(self, obs: torch.Tensor) -> torch.Tensor | None:
        """[...,N,A] bool: the actions f_avail allows in joint states [...,N,D] (at least the likeliest
        one per agent); None without an availability model (every action is available)."""
        if self.availability is None:
            return None
        logits = self.availability(obs.flatten(-2)).view(*obs.shape[:-1], self.actions)
        return (logits > 0) | F.one_hot(logits.argmax(-1), self.actions).bool()

    def action_logits(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """f_inv's logits, masked by f_avail(obs) where there is an availability model."""
        logits = self.inverse(torch.cat([obs, next_obs], dim=-1))
        available = self.available(obs)
        return logits if available is None else masked_logits(logits, available)

    def predict_next(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        flat = obs.flatten(-2)
        one_hot = F.one_hot(actions, self.actions).to(obs.dtype).flatten(-2)
        delta = self.forward_model(torch.cat([flat, one_hot], -1)).view_as(obs)
        return obs + delta.masked_fill(self.held, 0.0)  # residual: o + delta, held features unchanged

    def predict_reward(self, obs, actions, next_obs) -> torch.Tensor:
        return self.reward_of(obs, F.one_hot(actions, self.actions).to(obs.dtype), next_obs)

    def reward_of(self, obs, action_one_hot, next_obs) -> torch.Tensor:
        """r_fwd with the actions as (possibly relaxed) one-hots [...,N,A]: differentiable in all inputs."""
        return self.reward(torch.cat([obs.flatten(-2), action_one_hot.flatten(-2), next_obs.flatten(-2)], -1)).squeeze(-1)

    def loss(self, obs, actions, next_obs, rewards, avail, reward_scale: float) -> tuple[torch.Tensor, dict]:
        """Eq. 9's three auxiliary terms (the inverse model's as cross-entropy for discrete actions),
        and with an availability model the binary cross-entropy of each action's availability."""
        logits = masked_logits(self.inverse(torch.cat([obs, next_obs], dim=-1)), avail)  # the data's own masks
        inverse = F.cross_entropy(logits.flatten(0, -2), actions.flatten())
        forward = F.mse_loss(self.predict_next(obs, actions), next_obs)
        reward = F.mse_loss(self.predict_reward(obs, actions, next_obs), rewards / reward_scale)
        parts = {"inverse_loss": inverse.detach(), "forward_loss": forward.detach(), "reward_loss": reward.detach()}
        total = inverse + forward + reward
        if self.availability is not None:
            availability = F.binary_cross_entropy_with_logits(self.availability(obs.flatten(-2)).view_as(avail), avail.float())
            parts["availability_loss"] = availability.detach()
            total = total + availability
        return total, parts

    def update(self, optimizer, replay, real_steps: torch.Tensor, batch_size: int, generator: torch.Generator,
               normalise, reward_scale: float) -> dict:
        """One gradient step of Eq. 9 on ``batch_size`` of the ``real_steps`` of ``replay`` (transitions
        in the units of what is modelled, normalised here); the loss parts."""
        picked = torch.randint(0, len(real_steps), (batch_size,), generator=generator).to(real_steps.device)
        batch = replay.take(real_steps[picked], ("obs", "actions", "next_obs", "rewards", "avail"))
        loss, parts = self.loss(normalise(batch["obs"]), batch["actions"], normalise(batch["next_obs"]), batch["rewards"],
                                batch["avail"], reward_scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return parts

    def best_available(self, scores: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """The argmax of per-action ``scores`` [...,N,A] among the actions f_avail allows in ``obs``."""
        available = self.available(obs)
        return (scores if available is None else masked_logits(scores, available)).argmax(-1)

    @torch.no_grad()
    def consistency_error(self, obs: torch.Tensor, next_obs: torch.Tensor,
                          actions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per transition: mean |o_t+1 - f_fwd(o_t, a_t)| over the moving features, with a_t the given
        actions or, without them, f_inv(o_t, o_t+1); and the actions."""
        if actions is None:
            actions = self.action_logits(obs, next_obs).argmax(-1)
        error = (next_obs - self.predict_next(obs, actions))[..., ~self.held].abs().mean(dim=(-1, -2))
        return error, actions

    @torch.no_grad()
    def rollout(self, first: torch.Tensor, actions: torch.Tensor,
                scores: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """States [B,T+1,N,D] from ``first`` [B,N,D] under ``actions`` [B,T,N], by f_fwd step by step,
        and the actions taken: with per-action ``scores`` [B,T,N,A] (the diffused action channels),
        each step's action is re-chosen among those f_avail allows in the state the rollout reached."""
        states, taken = [first], []
        for t in range(actions.shape[1]):
            action = actions[:, t] if scores is None else self.best_available(scores[:, t], states[-1])
            taken.append(action)
            states.append(self.predict_next(states[-1], action))
        return torch.stack(states, 1), torch.stack(taken, 1)
