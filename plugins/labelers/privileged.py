"""Ground-truth labels from the imbalance protocol's ``expert_mask`` (the paper's CODI w Pri.)."""
from __future__ import annotations

import numpy as np

import codi_kit
from codi_kit.errors import CodiKitError
from codi_kit.labeling import Answers, Labeler


class PrivilegedLabeler(Labeler):
    ground_truth = True

    def answer(self, request):
        mask = request.dataset.expert_mask
        if mask is None:
            raise CodiKitError("labeler 'privileged' needs the dataset field 'expert_mask' (collected data only)")
        rows = mask[request.segments[:, 0]]
        single = rows.sum(axis=1) == 1  # balanced or random episodes have no single best agent
        # an episode without exactly one expert has no best agent: -1, never a made-up label
        best = np.where(single, rows.argmax(axis=1), -1).astype(np.int64)
        return Answers(best_agent=best, stats={"episodes_without_single_expert": int((~single).sum())})


@codi_kit.hookimpl
def register_labelers(register):
    register("privileged", PrivilegedLabeler)
