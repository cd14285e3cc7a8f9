"""No augmentation: learners see the original dataset alone (the paper's Original column)."""
from __future__ import annotations

import codi_kit
from codi_kit.augment import Augmenter, Generated


class NoAugmentation(Augmenter):
    def generate(self, request):
        return Generated(request.dataset.select(slice(0, 0)))


@codi_kit.hookimpl
def register_augmenters(register):
    register("none", NoAugmentation)
