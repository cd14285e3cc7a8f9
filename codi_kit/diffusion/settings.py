"""Settings of a diffusion augmenter; ``codi`` and ``madiff`` differ only in these values."""
from __future__ import annotations

import attrs

from codi_kit.diffusion.denoiser import DENOISERS


@attrs.frozen
class DiffusionSettings:
    use_labels: bool = True  # condition on quality labels z (CODI) or on return-to-go alone (MADiff)
    compose: bool = True  # compose per-agent conditions (Eq. 8); False = plain CFG on z = 1_n (CODI w/o Com.)
    target: str = attrs.field(default="state", validator=attrs.validators.in_(("state", "observations")))
    # "state": the env's compact state codec when it offers one (else observations); "observations"
    horizon: int = 8  # segment length H (with labels it is the label stage's horizon)
    prediction: str = attrs.field(default="velocity", validator=attrs.validators.in_(("noise", "sample", "velocity")))
    # the denoiser predicts the noise (Eq. 1-2), the clean segment (Diffuser's predict_epsilon=False)
    # or v = sqrt(a) eps - sqrt(1-a) x_0 (Salimans & Ho 2022)
    diffusion_steps: int = 100  # K
    sampling_steps: int = 20  # DDIM sub-sequence used to sample
    sampling_spacing: str = attrs.field(default="quadratic", validator=attrs.validators.in_(("uniform", "quadratic")))
    eta: float = 1.0  # DDIM stochasticity: 1.0 ~ DDPM (Eq. 10); measured closer to the data than 0.0 at 10 steps
    denoiser: str = attrs.field(default="unet", validator=attrs.validators.in_(tuple(DENOISERS)))
    # "unet": temporal U-Net (MADiff); "mlp": one token per agent's segment, residual MLP + agent attention
    width: int = 128  # U-Net channels; must exceed the per-agent observation size
    train_steps: int = 8000
    batch_size: int = 256
    learning_rate: float = 2e-4
    label_dropout: float = 0.25  # paper section 3.2: each label dimension masked independently
    condition_dropout: float = 0.1  # everything masked: the unconditional branch of CFG
    guidance_weight: float = 1.0  # w_i per composed condition (equal weights, paper section 3.2)
    target_return_quantile: float = 0.9  # generation's R-hat: this quantile of the dataset's initial RTG (MADiff's test_ret)
    generated_episodes: int = 0  # 0: as many as the original dataset
    keep_fraction: float = attrs.field(default=0.5, validator=attrs.validators.and_(attrs.validators.gt(0), attrs.validators.le(1)))
    # sample generated_episodes / keep_fraction episodes, keep those with the highest imputed return
    generation_batch: int = 256
    consistency_quantile: float = 0.99  # delta = this quantile of the consistency error on real data
    consistency_threshold: float = 0.0  # delta set by hand (normalised units); 0: use the quantile
    max_resamples: int = 3  # per segment, before the trajectory restarts from a new o_0
    max_restarts: int = 5  # per trajectory, before it is given up
    dynamics_hidden: int = 256
    dynamics_learning_rate: float = 1e-3
    diagnostics_segments: int = 256
    log_every: int = 250
