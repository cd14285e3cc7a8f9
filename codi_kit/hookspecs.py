"""Every hook a codi-kit plugin can implement; each docstring is the plugin author's reference.

Each hook receives a ``register`` callable and calls it once per component:
``register(name, factory)``. A factory is a class with a nested frozen attrs ``Config``
class (its settings, all with defaults) whose constructor takes one ``Config`` instance.
Names are global per kind: two plugins registering the same name is an error naming both.
"""
from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("codi_kit")

Register = Callable[[str, type], None]


@hookspec
def register_envs(register: Register) -> None:
    """Register environment adapters.

    ``register("mpe/cn", CooperativeNavigation)``: the class subclasses
    ``codi_kit.env.EnvAdapter``. It exposes ``spec`` (an ``EnvSpec``: agents, per-agent
    observation size, discrete action count, episode limit, state size, how the team reward is
    formed), batched ``reset(seeds)`` / ``step(actions)`` over many copies, available-action
    masks, ``expert_policy()`` and optionally ``rule_judge(obs, actions)`` for labeling.
    Settings come from the config section ``[env]`` (``--set env.agents=4``).
    """


@hookspec
def register_text_converters(register: Register) -> None:
    """Register segment-to-text converters for LLM prompts, one per environment name.

    ``register("mpe/cn", CooperativeNavigationText)``: the class has ``Config`` and a method
    ``prompt(obs, actions) -> str`` turning one segment (``obs [H,N,O]``, ``actions [H,N]``) into
    the prompt ``[description, per-agent timelines, instruction]``. Optionally also
    ``compact_prompt(obs, actions) -> str``: a short per-agent summary for small local models (the
    ``hf`` teacher's default; without it that teacher reads ``prompt``). The name must equal the
    environment's registered name, which is how the label stage finds it.
    """


@hookspec
def register_labelers(register: Register) -> None:
    """Register teachers that name the best agent of a trajectory segment.

    ``register("openai", OpenAITeacher)``: the class subclasses ``codi_kit.labeling.Labeler``
    and implements ``answer(request) -> Answers`` (best agent per asked segment, -1 where it
    names none; ``judged_none`` marks which -1s are a judgement that no agent stands out, as
    against no answer at all, when the teacher has both). Set ``ground_truth = True`` on the class when it reads privileged data, so
    the label stage asks it about every segment instead of a subset. Settings: ``[labeler]``.
    """


@hookspec
def register_augmenters(register: Register) -> None:
    """Register data augmenters: original dataset (+ quality labels) -> generated episodes.

    ``register("codi", CodiAugmenter)``: the class subclasses ``codi_kit.augment.Augmenter``
    and implements ``generate(request) -> Generated`` (the generated episodes only, in the same
    schema as the input, plus a diagnostics dict; the pipeline merges them with provenance).
    An augmenter that learns models fits them once and generates many times: it returns the
    settings its training reads from ``training_settings()`` (they key the train stage) and
    implements ``fit(request) -> dict``, which saves the models into ``request.context.workdir``;
    ``generate`` then loads them from ``request.trained``, so changing a sampling-only setting
    reuses the trained models. ``needs_labels`` (a property of the configured instance) says
    whether the label stage runs. Settings: ``[augmenter]``.
    """


@hookspec
def register_learners(register: Register) -> None:
    """Register offline learners: dataset -> decentralised policy.

    ``register("bc", BehaviourCloning)``: the class subclasses ``codi_kit.learn.Learner`` and
    implements ``fit(request) -> Policy`` and ``load(folder, context) -> Policy``; the returned
    ``codi_kit.policy.Policy`` saves itself and acts from per-agent observations and
    available-action masks. ``request.dataset`` holds the original and generated episodes
    unmerged (``codi_kit.data.parts.DatasetParts``); ``codi_kit.data.replay.transitions`` flattens
    it, ``.merged()`` gives one padded ``Dataset``. Settings: ``[learner]``.
    """
