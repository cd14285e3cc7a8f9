"""MBTS (Hepburn & Montana 2022; multi-agent on the joint state, as the CODI paper runs it): no
diffusion model; an ensemble of dynamics models, a value function and the data's own states,
stitched where a jump is plausible and leads to a higher value (``codi_kit.mbts``)."""
import codi_kit
from codi_kit.mbts.augmenter import MBTSAugmenter


@codi_kit.hookimpl
def register_augmenters(register):
    register("mbts", MBTSAugmenter)
