"""The environment's rule judge as teacher: the offline default of ``codi-kit run`` (no API key)."""
from __future__ import annotations

import numpy as np

import codi_kit
from codi_kit.errors import CodiKitError
from codi_kit.labeling import Answers, Labeler
from codi_kit.progress import progress_bar


class RuleTeacher(Labeler):
    def answer(self, request):
        env, dataset = request.context.env, request.dataset
        obs = dataset.segment_view("obs", request.horizon)
        actions = dataset.segment_view("actions", request.horizon)
        best = np.full(len(request.segments), -1, np.int64)
        with progress_bar(len(best), "rule teacher") as bar:
            for row, (episode, start) in enumerate(request.segments):
                judged = env.rule_judge(obs[episode, start], actions[episode, start])
                if judged is None:
                    raise CodiKitError(f"labeler 'rule': env '{env.spec.name}' has no rule judge; choose another labeler")
                best[row] = judged  # -1: the judge cannot tell (unanswered)
                bar.advance()
        return Answers(best_agent=best)


@codi_kit.hookimpl
def register_labelers(register):
    register("rule", RuleTeacher)
