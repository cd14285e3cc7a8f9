"""Settings of a diffusion augmenter; ``codi`` and ``madiff`` differ only in these values.

Each setting belongs to the stage that reads it: *train* (the default) keys the train stage, so
changing it retrains; ``sampling(...)`` settings are read only by generation, so an ablation or a
guidance sweep reuses one trained model; ``bookkeeping(...)`` settings change neither result.
"""
from __future__ import annotations

import attrs

from codi_kit.diffusion.denoiser import ACTIVATIONS, DENOISERS, LABEL_EMBEDDINGS
from codi_kit.diffusion.guidance import COMPOSITIONS


def sampling(default, **kwargs):
    """A setting only generation reads (it keys the generate stage, not the train stage)."""
    return attrs.field(default=default, metadata={"stage": "generate"}, **kwargs)


def bookkeeping(default, **kwargs):
    """A setting that changes how a stage runs, not what it computes (e.g. checkpoint frequency)."""
    return attrs.field(default=default, metadata={"stage": None}, **kwargs)


def added_later(default, **kwargs):
    """A train setting added after models were trained: it keys the train stage only where it
    differs from its default, so stages trained before it existed stay valid."""
    return attrs.field(default=default, metadata={"stage": "train", "keyed_if_changed": True}, **kwargs)


def training_settings(settings, base_class: type | None = None) -> dict:
    """The settings training reads: the train stage's key. A subclass that only changes a
    default (``compose: bool = False``) keeps the stage its base class (``base_class``, default
    ``DiffusionSettings``) gave the setting."""
    base = {f.name: f for f in attrs.fields(base_class or DiffusionSettings)}
    key = {}
    for field in attrs.fields(type(settings)):
        declared = base.get(field.name, field)  # a subclass's changed default keeps its base's marks
        value = getattr(settings, field.name)
        if declared.metadata.get("stage", "train") != "train":
            continue
        if declared.metadata.get("keyed_if_changed") and value == declared.default:
            continue
        key[field.name] = value
    return key


@attrs.frozen
class DiffusionSettings:
    # -- what is learned (train) --------------------------------------------------------------
    use_labels: bool = True  # condition on quality labels z (CODI) or on return-to-go alone (MADiff)
    diffused: str = attrs.field(default="state", validator=attrs.validators.in_(("state", "observations")))
    # "state": the env's compact state codec when it offers one (else observations); "observations"
    horizon: int = 8  # segment length H (the paper's 8); with labels at most label.horizon (see DiffusionAugmenter)
    diffuse_actions: bool = False  # each agent's action one-hot is diffused beside its state (the authors' use_action)
    action_weight: float = 10.0  # loss weight of the first step's action channels (Diffuser's and the authors' action_weight)
    noise_floor: float = 0.0  # training draws noise levels from noise_floor x K to K (0: all of them)
    rounding_weight: float = 0.0  # cross-entropy of the diffused actions' implied x_0 (Diffusion-LM's rounding loss)
    observation_input: bool = False  # the denoiser reads each agent's clean first observation (own frame) as a condition
    prediction: str = attrs.field(default="velocity", validator=attrs.validators.in_(("noise", "sample", "velocity")))
    # the denoiser predicts the noise (Eq. 1-2), the clean segment (Diffuser's predict_epsilon=False)
    # or v = sqrt(a) eps - sqrt(1-a) x_0 (Salimans & Ho 2022)
    diffusion_steps: int = 100  # K
    denoiser: str = attrs.field(default="unet", validator=attrs.validators.in_(tuple(DENOISERS)))
    # "unet": temporal U-Net (MADiff); "mlp": one token per agent's segment, residual MLP + agent attention
    width: int = 128  # U-Net channels; must exceed the per-agent observation size
    unet_multipliers: tuple = added_later((1, 2), converter=tuple)  # U-Net channels per level = width x these
    activation: str = added_later("mish", validator=attrs.validators.in_(tuple(ACTIVATIONS)))
    # the denoiser's nonlinearity: "mish" (Diffuser, MADiff, the authors) or "silu"
    label_embedding: str = added_later("own", validator=attrs.validators.in_(LABEL_EMBEDDINGS))
    # what each agent's stream reads of z: "own" its own label (z = 1_n is in distribution per stream, so
    # plain CFG on it already composes) or "team" the authors' one embedding of the whole label vector
    # (z = 1_n is unseen in one-expert data: what Eq. 8's composition is for); denoiser.Conditioning
    train_steps: int = 8000
    batch_size: int = 256
    learning_rate: float = 2e-4
    ema_decay: float = 0.995  # EMA of the denoiser's weights, used for sampling (Diffuser, MADiff, CODI: 0.995)
    ema_every: int = 10  # updates between EMA steps (Diffuser's update_ema_every)
    ema_start: int = 2000  # before this update the EMA copies the raw weights (Diffuser's step_start_ema)
    label_dropout: float = 0.25  # paper section 3.2: each label dimension masked independently
    condition_dropout: float = 0.1  # everything masked: the unconditional branch of CFG
    consistency_quantile: float = 0.99  # delta = this quantile of the consistency error on real data
    dynamics_hidden: int = 256
    dynamics_learning_rate: float = 1e-3
    log_every: int = bookkeeping(250)  # updates between logged losses (metrics.jsonl, TensorBoard); never retrains
    checkpoint_every: int = bookkeeping(500)  # updates between resumable checkpoints of training

    # -- how it is sampled (generate) ---------------------------------------------------------
    compose: bool = sampling(True)  # compose per-agent conditions (Eq. 8); False = plain CFG on z = 1_n (CODI w/o Com.)
    sampling_steps: int = sampling(20)  # DDIM sub-sequence used to sample
    sampling_spacing: str = sampling("quadratic", validator=attrs.validators.in_(("uniform", "quadratic")))
    eta: float = sampling(1.0)  # DDIM stochasticity: 1.0 ~ DDPM (Eq. 10); measured closer to the data than 0.0 at 10 steps
    guidance_weight: float = sampling(1.0)  # w_i per composed condition (equal weights, paper section 3.2)
    guidance_scope: str = sampling("joint", validator=attrs.validators.in_(("joint", "own")))
    # "joint": each composed condition moves the whole segment (Eq. 8); "own": condition i moves agent i only
    composition: str = sampling("eq8", validator=attrs.validators.in_(COMPOSITIONS))
    # "eq8": eps_u + w sum_i (eps_{R,z_i} - eps_u), as the authors compute it (return guidance n times);
    # "nested": eps_u + w (eps_R - eps_u) + sum_i w (eps_{R,z_i} - eps_R) (Composable Diffusion: the return once)
    target_return_quantile: float = sampling(0.9)  # R-hat: this quantile of the dataset's initial RTG (MADiff's test_ret)
    generated_episodes: int = sampling(0)  # 0: as many episodes as the original (branches: as many transitions)
    keep_fraction: float = sampling(0.5, validator=attrs.validators.and_(attrs.validators.gt(0), attrs.validators.le(1)))
    # sample generated_episodes / keep_fraction episodes, keep those with the highest imputed return
    generation_batch: int = sampling(256)
    consistency_threshold: float = sampling(0.0)  # delta set by hand (normalised units); 0: the trained quantile's
    max_resamples: int = sampling(3)  # per segment, before the trajectory restarts from a new o_0
    max_restarts: int = sampling(5)  # per trajectory, before it is given up
    branch_length: int = sampling(0)  # 0: whole episodes from initial states (the paper); L: L-step rollouts from every real step
    resimulate: bool = sampling(False)  # states after a segment's first are f_fwd's under its actions (exactly consistent)
    diagnostics_segments: int = sampling(256)


# What a CPU budget can learn (the quality issue, CN N=3, 2000 imbalanced episodes, 2 cores; README
# "What the CPU path buys" gives the numbers, benchmarks/results/generator*.json, exp-*.json and
# train_budget.json hold them): segments of H = 2 with each agent's action diffused beside its
# state and each agent's clean first observation as a condition; the denoiser trained on the top
# 10% of noise levels and sampled with one denoising step from pure noise (a conditional-mean
# decision of the first action, more expert-like at real states than 10-step sampling of a denoiser
# trained on every level); one generated transition branched off every real step (whole episodes
# compound errors); SiLU for a faster step on a CPU at the same BC gain (run_time.json).
CPU_PATH = {"denoiser": "mlp", "horizon": 2, "diffuse_actions": True, "observation_input": True,
            "prediction": "sample", "learning_rate": 1e-3, "noise_floor": 0.9, "rounding_weight": 1.0,
            "sampling_steps": 1, "guidance_scope": "own", "branch_length": 1, "resimulate": True,
            "keep_fraction": 1.0, "ema_every": 1, "activation": "silu"}

# Per-profile values shared by the diffusion augmenters (``PROFILES`` of codi and madiff).
PROFILES = {
    "smoke": {**CPU_PATH, "train_steps": 60, "width": 32, "batch_size": 64, "diagnostics_segments": 16,
              "generated_episodes": 8, "log_every": 20, "checkpoint_every": 20, "ema_start": 0,
              "consistency_threshold": 1e6},  # an untrained model passes nothing: accept all in smoke
    # 1.5M training segments, as before the speed issue, in 3000 updates of 512 at twice the
    # learning rate instead of 6000 of 256: the same data for BC in fewer, cheaper updates; a
    # million segments (2000 updates) already reaches the same agreement with the expert but idles
    # more and is worth less to BC (benchmarks/results/train_budget.json); 40000 generated
    # transitions measured better downstream than 20000
    "quick": {**CPU_PATH, "train_steps": 3000, "width": 128, "batch_size": 512, "learning_rate": 2e-3,
              "generated_episodes": 40000, "ema_start": 500},
    # The paper's data scale on a CPU: the quick generator (its training reads segments, not the
    # dataset, so 20000 episodes cost no more updates) and its 40000 generated transitions: at
    # 20000 episodes BC gained 0.08 with them and lost 0.17 with as many as the data has
    # (generated_episodes 0: 500000, the paper's proportion; benchmarks/results/paper-scale*.json)
    "standard": {**CPU_PATH, "train_steps": 3000, "width": 128, "batch_size": 512, "learning_rate": 2e-3,
                 "generated_episodes": 40000, "ema_start": 500},
    # The authors' CN configuration (lilh76/CODI CODI_diffusion/exp_specs/mpe/spread/
    # mad_mpe_spread3_attn_exp.yaml, syn_spread.yaml) where our code has the same notion; the
    # README lists every difference and its reason. Batch 32 x 2 gradient accumulation = batch 64.
    # The consistency threshold stays calibrated on real data: the authors' 0.01 is a mean squared
    # error in CDF-normalised units ([-1, 1]), which ours (standardised features) are not.
    "paper": {"denoiser": "unet", "width": 128, "unet_multipliers": (1, 4, 8), "horizon": 8, "diffused": "observations",
              "diffuse_actions": True, "action_weight": 10.0, "prediction": "noise", "diffusion_steps": 200,
              "train_steps": 500000, "batch_size": 64, "learning_rate": 2e-4, "ema_decay": 0.995,
              "label_dropout": 0.25, "condition_dropout": 0.25, "sampling_steps": 15, "sampling_spacing": "uniform",
              "guidance_weight": 1.2, "guidance_scope": "joint", "max_resamples": 3,
              "max_restarts": 5, "generated_episodes": 20000, "keep_fraction": 1.0, "generation_batch": 1024,
              "log_every": 1000, "checkpoint_every": 5000},
}


def profiles_with(**changes: dict) -> dict:
    """``PROFILES`` with some profiles' values changed (a plugin's own measured tuning)."""
    return {name: {**values, **changes.get(name, {})} for name, values in PROFILES.items()}
