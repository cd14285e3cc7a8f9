"""Temporal U-Net over segments of joint observations, one stream per agent (agents folded into
the batch, MADiff-style) with attention across agents. Each stream is conditioned on the
diffusion step, the return-to-go and the quality labels (its own agent's with a mask bit, or one
embedding of the whole label vector: ``Conditioning``), so "unconditional", "label masked" and
"agent i is good" are all inputs the network has seen."""
from __future__ import annotations

import math

import torch
from torch import nn


# Every denoiser's nonlinearity: Mish (Diffuser's and MADiff's temporal U-Net) or SiLU, its near
# twin, which PyTorch's CPU kernels compute several times faster (the training speed of either:
# "before" and "before-silu" in benchmarks/results/train_budget.json).
ACTIVATIONS = {"mish": nn.Mish, "silu": nn.SiLU}


def step_embedding(k: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    frequencies = torch.exp(-math.log(10000) * torch.arange(half, device=k.device) / half)
    angles = k.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """Two 1-D convolutions over time with FiLM conditioning (scale and shift per channel)."""

    def __init__(self, channels_in: int, channels_out: int, condition: int, kernel: int = 5, activation: str = "mish"):
        super().__init__()
        groups = 8 if channels_out % 8 == 0 else 1
        act = ACTIVATIONS[activation]
        self.first = nn.Sequential(nn.Conv1d(channels_in, channels_out, kernel, padding=kernel // 2),
                                   nn.GroupNorm(groups, channels_out), act())
        self.second = nn.Sequential(nn.Conv1d(channels_out, channels_out, kernel, padding=kernel // 2),
                                    nn.GroupNorm(groups, channels_out), act())
        self.film = nn.Sequential(act(), nn.Linear(condition, 2 * channels_out))
        self.skip = nn.Conv1d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(condition).unsqueeze(-1).chunk(2, dim=1)
        hidden = self.first(x) * (1 + scale) + shift
        return self.second(hidden) + self.skip(x)


class AgentAttention(nn.Module):
    """Self-attention across the agents' streams at every time position.

    The weights are ``nn.MultiheadAttention``'s, applied here as one projection and
    ``scaled_dot_product_attention``: the module's own path for packed projections spends about a
    quarter of its forward and backward time filling and copying buffers of the projections'
    gradients (profiled with three agents)."""

    def __init__(self, channels: int, agents: int, heads: int = 4):
        super().__init__()
        self.agents = agents
        self.norm = nn.LayerNorm(channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B*N, C, H]
        batch_agents, channels, horizon = x.shape
        batch = batch_agents // self.agents
        tokens = x.view(batch, self.agents, channels, horizon).permute(0, 3, 1, 2).reshape(batch * horizon, self.agents, channels)
        tokens = tokens + self.mix(self.norm(tokens))
        return tokens.view(batch, horizon, self.agents, channels).permute(0, 2, 3, 1).reshape(batch_agents, channels, horizon)

    def mix(self, tokens: torch.Tensor) -> torch.Tensor:
        """Multi-head scaled dot-product attention over the agent axis of [T, N, C] tokens."""
        weights = self.attention
        heads = weights.num_heads
        size = tokens.shape[-1] // heads
        projected = nn.functional.linear(tokens, weights.in_proj_weight, weights.in_proj_bias)
        query, key, value = (part.transpose(-3, -2) for part in projected.unflatten(-1, (3, heads, size)).unbind(-3))
        mixed = nn.functional.scaled_dot_product_attention(query, key, value)  # [T, heads, N, size]
        return weights.out_proj(mixed.transpose(-3, -2).flatten(-2))


LABEL_EMBEDDINGS = ("own", "team")


class Conditioning(nn.Module):
    """[B*N, C] per agent stream: step + return-to-go (masked) for the whole team, plus the quality
    labels, plus an agent embedding; with ``observation_features`` > 0 also agent i's clean observation of
    the segment's first step (given at generation), in its own frame.

    ``label_embedding`` says what stream i reads of the labels:

    - ``"own"``: agent i's own label with its mask bit. Every stream has seen z_i = 1 in
      training, so "all agents good" (z = 1_n) is in distribution stream by stream and plain
      CFG on 1_n is already compositional (issue 31);
    - ``"team"``, the authors' (lilh76/CODI ``ma_temporal.py``, ``labels_mlp_1`` and
      ``labels_mlp_2``): each agent j's [z_j, one-hot j] embedded, masked agents' embeddings
      zeroed, all of them flattened into ONE embedding of the whole label vector that every
      stream reads. In one-expert data z = 1_n is never seen, which is what composing one
      condition per agent (Eq. 8) is for. The authors draw the label mask per stream; we draw
      it once per segment (every stream reads the same labels).

    Measured (quality issue): a denoiser that sees the first step only inside its noisy input
    learns the label's marginal effect ("a good agent idles"), not what a good agent does in
    *this* state; the first observation as a clean conditioning input is what state-dependent
    behaviour is read from."""

    def __init__(self, agents: int, width: int, observation_features: int = 0, activation: str = "mish",
                 label_embedding: str = "own"):
        super().__init__()
        if label_embedding not in LABEL_EMBEDDINGS:
            raise ValueError(f"label_embedding '{label_embedding}': choose one of {', '.join(LABEL_EMBEDDINGS)}")
        self.agents, self.label_embedding = agents, label_embedding
        act = ACTIVATIONS[activation]
        self.step_mlp = nn.Sequential(nn.Linear(width, 2 * width), act(), nn.Linear(2 * width, width))
        self.return_mlp = nn.Sequential(nn.Linear(2, width), act(), nn.Linear(width, width))
        if label_embedding == "own":
            self.label_mlp = nn.Sequential(nn.Linear(2, width), act(), nn.Linear(width, width))
        else:
            self.label_mlp = nn.Sequential(nn.Linear(1 + agents, width), act(), nn.Linear(width, width))
            self.team_label_mlp = nn.Sequential(nn.Linear(agents * width, width), act(), nn.Linear(width, width))
        self.agent_embedding = nn.Embedding(agents, width)
        self.observation_mlp = nn.Sequential(nn.Linear(observation_features, 2 * width), act(), nn.Linear(2 * width, width)) \
            if observation_features else None

    def forward(self, k, return_to_go, return_mask, labels, label_mask, first_observation=None) -> torch.Tensor:
        """``first_observation`` [B,N,O]: each agent's normalised observation of the segment's first step."""
        batch = k.shape[0]
        team = self.step_mlp(step_embedding(k, self.step_mlp[0].in_features))
        team = team + self.return_mlp(torch.stack([return_to_go * return_mask, return_mask], -1))
        per_agent = team[:, None] + self.agent_embedding.weight[None] + self.labels(labels, label_mask)
        if self.observation_mlp is not None:
            per_agent = per_agent + self.observation_mlp(first_observation)
        return per_agent.reshape(batch * self.agents, -1)

    def labels(self, labels: torch.Tensor, label_mask: torch.Tensor) -> torch.Tensor:
        """[B,N,C] (own: each stream its own label) or [B,1,C] (team: one embedding of z)."""
        if self.label_embedding == "own":
            return self.label_mlp(torch.stack([labels * label_mask, label_mask], -1))
        identity = torch.eye(self.agents, device=labels.device).expand(labels.shape[0], -1, -1)
        each = self.label_mlp(torch.cat([labels[..., None], identity], -1)) * label_mask[..., None]  # masked: 0
        return self.team_label_mlp(each.flatten(1))[:, None]


class AgentUnet(nn.Module):
    """eps_theta(x_k, k | R, z, mask): x [B,H,N,D] -> predicted noise [B,H,N,D], or the predicted
    clean segment x_0 (``prediction="sample"``) or v (``"velocity"``).

    One level per entry of ``multipliers`` (channels = width x multiplier), halving time between
    levels: (1, 2) is our CPU-sized net, (1, 4, 8) the authors' CN configuration (CODI
    ``exp_specs/mpe/spread/mad_mpe_spread3_attn_exp.yaml``: dim 128, dim_mults [1, 4, 8]).
    Attention across agents at the bottom level and after every decoder level (MADiff)."""

    def __init__(self, feature_dim: int, agents: int, width: int = 128, horizon: int = 8, prediction: str = "noise",
                 observation_features: int = 0, multipliers: tuple[int, ...] = (1, 2), activation: str = "mish",
                 label_embedding: str = "own"):
        super().__init__()
        self.prediction = prediction  # what the output is: "noise" eps, "sample" x_0 or "velocity" v
        if width < feature_dim:
            # measured: a U-Net narrower than its input produced unusable samples (quality issue)
            raise ValueError(f"denoiser width {width} must be at least the feature size {feature_dim}")
        if len(multipliers) < 2:
            raise ValueError(f"U-Net multipliers {tuple(multipliers)}: at least two levels")
        self.agents, self.horizon = agents, horizon
        condition = width
        self.condition = Conditioning(agents, condition, observation_features, activation, label_embedding)
        channels = [width * m for m in multipliers]

        def block(channels_in, channels_out):
            return ResidualBlock(channels_in, channels_out, condition, activation=activation)

        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        previous = feature_dim
        for level in channels[:-1]:
            self.down.append(nn.ModuleList([block(previous, level), block(level, level)]))
            self.downsample.append(nn.Conv1d(level, level, 3, stride=2, padding=1))
            previous = level
        bottom = channels[-1]
        self.middle = nn.ModuleList([block(previous, bottom), block(bottom, bottom)])
        self.middle_attention = AgentAttention(bottom, agents)
        self.upsample, self.up, self.up_attention = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        previous = bottom
        for level in reversed(channels[:-1]):
            self.upsample.append(nn.ConvTranspose1d(previous, previous, 4, stride=2, padding=1))
            self.up.append(nn.ModuleList([block(previous + level, level), block(level, level)]))
            self.up_attention.append(AgentAttention(level, agents))  # decoder-side cross-agent attention (MADiff)
            previous = level
        self.out = nn.Conv1d(channels[0], feature_dim, 1)

    def forward(self, x, k, return_to_go, return_mask, labels, label_mask, first_observation=None):
        batch, horizon, agents, features = x.shape
        condition = self.condition(k, return_to_go, return_mask, labels, label_mask, first_observation)
        hidden = x.permute(0, 2, 3, 1).reshape(batch * agents, features, horizon)
        skips = []
        for blocks, downsample in zip(self.down, self.downsample):
            for block in blocks:
                hidden = block(hidden, condition)
            skips.append(hidden)
            hidden = downsample(hidden)
        for block in self.middle:
            hidden = block(hidden, condition)
        hidden = self.middle_attention(hidden)
        for upsample, blocks, attention in zip(self.upsample, self.up, self.up_attention):
            skip = skips.pop()
            hidden = torch.cat([upsample(hidden)[..., :skip.shape[-1]], skip], dim=1)
            for block in blocks:
                hidden = block(hidden, condition)
            hidden = attention(hidden)
        out = self.out(hidden)
        return out.view(batch, agents, features, horizon).permute(0, 3, 1, 2)


class MixerBlock(nn.Module):
    """Residual MLP block on an agent's whole-segment token with FiLM conditioning, then attention
    across the agents' tokens."""

    def __init__(self, width: int, agents: int, activation: str = "mish"):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, 2 * width)
        self.activation = act()
        self.outer = nn.Linear(2 * width, width)
        self.film = nn.Sequential(act(), nn.Linear(width, 2 * width))
        self.attention = AgentAttention(width, agents)

    def forward(self, tokens: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:  # [B*N, C]
        scale, shift = self.film(condition).chunk(2, dim=-1)
        tokens = tokens + self.outer(self.activation(self.inner(self.norm(tokens) * (1 + scale) + shift)))
        return self.attention(tokens.unsqueeze(-1)).squeeze(-1)  # a one-step stream per agent


class AgentMlp(nn.Module):
    """The same interface as ``AgentUnet``: each agent's whole segment is one token (H x D numbers)
    through residual MLP blocks with FiLM conditioning and attention across agents. Measured on 2
    CPU cores: ~6x the U-Net's training segments per second and ~7x faster sampling, which buys
    the training samples the conditional motion needs at small compute."""

    def __init__(self, feature_dim: int, agents: int, width: int = 256, horizon: int = 8, prediction: str = "noise",
                 observation_features: int = 0, depth: int = 3, activation: str = "mish", label_embedding: str = "own"):
        super().__init__()
        self.prediction, self.agents, self.horizon = prediction, agents, horizon
        self.condition = Conditioning(agents, width, observation_features, activation, label_embedding)
        self.embed = nn.Linear(horizon * feature_dim, width)
        self.blocks = nn.ModuleList([MixerBlock(width, agents, activation) for _ in range(depth)])
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, horizon * feature_dim))

    def forward(self, x, k, return_to_go, return_mask, labels, label_mask, first_observation=None):
        batch, horizon, agents, features = x.shape
        condition = self.condition(k, return_to_go, return_mask, labels, label_mask, first_observation)
        tokens = self.embed(x.permute(0, 2, 1, 3).reshape(batch * agents, horizon * features))
        for block in self.blocks:
            tokens = block(tokens, condition)
        out = self.out(tokens).view(batch, agents, horizon, features)
        return out.permute(0, 2, 1, 3)


DENOISERS = {"unet": AgentUnet, "mlp": AgentMlp}
