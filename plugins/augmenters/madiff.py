"""MADiff (Zhu et al., NeurIPS 2024), the paper's baseline: the same diffusion core conditioned on
return-to-go alone, plain classifier-free guidance, same dynamics models and stitching."""
import attrs

import codi_kit
from codi_kit.diffusion.augmenter import DiffusionAugmenter
from codi_kit.diffusion.settings import DiffusionSettings


class MADiff(DiffusionAugmenter):
    @attrs.frozen
    class Config(DiffusionSettings):
        use_labels: bool = False
        compose: bool = False
        guidance_weight: float = 1.2  # MADiff's condition_guidance_w


@codi_kit.hookimpl
def register_augmenters(register):
    register("madiff", MADiff)
