"""MADiTS (Yuan et al., ICLR 2025), the paper's baseline: MADiff's generation (return-to-go alone,
plain classifier-free guidance) with each accepted segment repaired: integrated gradients of the
learned team reward find the agents that earn least, and those agents are re-denoised with the
first step and the other agents held (``codi_kit.diffusion.regenerate``)."""
import attrs

import codi_kit
from codi_kit.diffusion.augmenter import DiffusionAugmenter
from codi_kit.diffusion.regenerate import MADiTSSettings


class MADiTS(DiffusionAugmenter):
    @attrs.frozen
    class Config(MADiTSSettings):
        use_labels: bool = False
        compose: bool = False
        guidance_weight: float = 1.2  # condition_guidance_w, as MADiff (lilh76/CODI syn_spread.yaml)


@codi_kit.hookimpl
def register_augmenters(register):
    register("madits", MADiTS)
