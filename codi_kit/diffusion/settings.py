"""Settings of a diffusion augmenter; ``codi`` and ``madiff`` differ only in these values.

Each setting belongs to the stage that reads it: *train* (the default) keys the train stage, so
changing it retrains; ``sampling(...)`` settings are read only by generation, so an ablation or a
guidance sweep reuses one trained model; ``bookkeeping(...)`` settings change neither result.
"""
from __future__ import annotations

import attrs

from codi_kit.diffusion.denoiser import DENOISERS


def sampling(default, **kwargs):
    """A setting only generation reads (it keys the generate stage, not the train stage)."""
    return attrs.field(default=default, metadata={"stage": "generate"}, **kwargs)


def bookkeeping(default, **kwargs):
    """A setting that changes how a stage runs, not what it computes (e.g. checkpoint frequency)."""
    return attrs.field(default=default, metadata={"stage": None}, **kwargs)


def training_settings(settings) -> dict:
    """The settings training reads: the train stage's key. A subclass that only changes a
    default (``compose: bool = False``) keeps the stage its base class gave the setting."""
    inherited = {f.name: f.metadata["stage"] for f in attrs.fields(DiffusionSettings) if "stage" in f.metadata}
    return {f.name: getattr(settings, f.name) for f in attrs.fields(type(settings))
            if f.metadata.get("stage", inherited.get(f.name, "train")) == "train"}


@attrs.frozen
class DiffusionSettings:
    # -- what is learned (train) --------------------------------------------------------------
    use_labels: bool = True  # condition on quality labels z (CODI) or on return-to-go alone (MADiff)
    target: str = attrs.field(default="state", validator=attrs.validators.in_(("state", "observations")))
    # "state": the env's compact state codec when it offers one (else observations); "observations"
    horizon: int = 8  # segment length H (the paper's 8); with labels at most label.horizon (see DiffusionAugmenter)
    diffuse_actions: bool = False  # each agent's action one-hot is diffused beside its state (the authors' use_action)
    action_weight: float = 10.0  # loss weight of the first step's action channels (Diffuser's and the authors' action_weight)
    first_step_input: bool = False  # the denoiser reads each agent's clean first observation (own frame) as a condition
    prediction: str = attrs.field(default="velocity", validator=attrs.validators.in_(("noise", "sample", "velocity")))
    # the denoiser predicts the noise (Eq. 1-2), the clean segment (Diffuser's predict_epsilon=False)
    # or v = sqrt(a) eps - sqrt(1-a) x_0 (Salimans & Ho 2022)
    diffusion_steps: int = 100  # K
    denoiser: str = attrs.field(default="unet", validator=attrs.validators.in_(tuple(DENOISERS)))
    # "unet": temporal U-Net (MADiff); "mlp": one token per agent's segment, residual MLP + agent attention
    width: int = 128  # U-Net channels; must exceed the per-agent observation size
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
    log_every: int = 250
    checkpoint_every: int = bookkeeping(500)  # updates between resumable checkpoints of training

    # -- how it is sampled (generate) ---------------------------------------------------------
    compose: bool = sampling(True)  # compose per-agent conditions (Eq. 8); False = plain CFG on z = 1_n (CODI w/o Com.)
    sampling_steps: int = sampling(20)  # DDIM sub-sequence used to sample
    sampling_spacing: str = sampling("quadratic", validator=attrs.validators.in_(("uniform", "quadratic")))
    eta: float = sampling(1.0)  # DDIM stochasticity: 1.0 ~ DDPM (Eq. 10); measured closer to the data than 0.0 at 10 steps
    guidance_weight: float = sampling(1.0)  # w_i per composed condition (equal weights, paper section 3.2)
    guidance_scope: str = sampling("joint", validator=attrs.validators.in_(("joint", "own")))
    # "joint": each composed condition moves the whole segment (Eq. 8); "own": condition i moves agent i only
    target_return_quantile: float = sampling(0.9)  # R-hat: this quantile of the dataset's initial RTG (MADiff's test_ret)
    generated_episodes: int = sampling(0)  # 0: as many as the original dataset
    keep_fraction: float = sampling(0.5, validator=attrs.validators.and_(attrs.validators.gt(0), attrs.validators.le(1)))
    # sample generated_episodes / keep_fraction episodes, keep those with the highest imputed return
    generation_batch: int = sampling(256)
    consistency_threshold: float = sampling(0.0)  # delta set by hand (normalised units); 0: the trained quantile's
    max_resamples: int = sampling(3)  # per segment, before the trajectory restarts from a new o_0
    max_restarts: int = sampling(5)  # per trajectory, before it is given up
    resimulate: bool = sampling(False)  # states after a segment's first are f_fwd's under its actions (exactly consistent)
    diagnostics_segments: int = sampling(256)


# Per-profile values shared by the diffusion augmenters (``PROFILES`` of codi and madiff).
PROFILES = {
    "smoke": {"train_steps": 60, "width": 32, "sampling_steps": 4, "diagnostics_segments": 16,
              "generated_episodes": 8, "log_every": 20, "checkpoint_every": 20, "ema_start": 0, "ema_every": 1,
              "consistency_threshold": 1e6},  # an untrained model passes nothing: accept all in smoke
    # measured on 2 CPU cores (CN N=3): the MLP denoiser at width 128, batch 256 trains ~12 steps/s
    # (3.4k segments/s, ~6x the width-64 U-Net's) and samples ~7x faster; at the same ~4 min of
    # training it gave the stronger probe (0.046 vs 0.034 at w=1)
    "quick": {"denoiser": "mlp", "train_steps": 3000, "width": 128, "batch_size": 256, "sampling_steps": 10,
              "generated_episodes": 1000, "ema_start": 1000, "ema_every": 1},
    "paper": {"train_steps": 200000, "generated_episodes": 20000, "width": 256},
}
