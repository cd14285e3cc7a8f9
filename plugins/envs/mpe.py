"""Bundled MPE environments: Cooperative Navigation (3-5 agents) and World (predator-prey), with
their segment-to-text converters for LLM teachers."""
import codi_kit
from codi_kit_plugins.envs.mpe_cn import CooperativeNavigation
from codi_kit_plugins.envs.mpe_text import CooperativeNavigationText, WorldText
from codi_kit_plugins.envs.mpe_world import World


@codi_kit.hookimpl
def register_envs(register):
    register("mpe/cn", CooperativeNavigation)
    register("mpe/world", World)


@codi_kit.hookimpl
def register_text_converters(register):
    register("mpe/cn", CooperativeNavigationText)
    register("mpe/world", WorldText)
