"""CODI (paper section 3): diffusion conditioned on return-to-go and per-agent quality labels,
sampled with compositional guidance over "agent i is good" (Eq. 8), then stitched.
``compose=false`` is the paper's CODI w/o Com.; run on ``--labeler privileged`` for CODI w Pri."""
import attrs

import codi_kit
from codi_kit.diffusion.augmenter import DiffusionAugmenter
from codi_kit.diffusion.settings import DiffusionSettings


class Codi(DiffusionAugmenter):
    @attrs.frozen
    class Config(DiffusionSettings):
        use_labels: bool = True
        compose: bool = True


@codi_kit.hookimpl
def register_augmenters(register):
    register("codi", Codi)
