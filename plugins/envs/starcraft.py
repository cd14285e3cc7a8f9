"""StarCraft-style battles: JaxMARL's SMAX (``smax/*``, runs on any CPU) and the real game through
SMACv2 (``smacv2/*``, needs the StarCraft II binary), with the combat text converter for LLM
teachers. Each backend is imported when its env is built, so the plugin loads without either."""
import codi_kit
from codi_kit_plugins.envs.combat_text import CombatText
from codi_kit_plugins.envs.smacv2_battle import Smacv2Battle, Smacv2Zerg3v4
from codi_kit_plugins.envs.smax_battle import SmaxBattle, SmaxZerg3v4

BATTLES = {"smax/3m": SmaxBattle, "smax/zerg_3v4": SmaxZerg3v4,
           "smacv2/3m": Smacv2Battle, "smacv2/zerg_3v4": Smacv2Zerg3v4}


def text_for(battle):
    """The combat converter for one battle env: it reads that env's observations."""

    class Text(CombatText):
        def __init__(self, config):
            env = battle(battle.Config())
            super().__init__(config, env.parse, env.layout)
            env.close()

    Text.__name__ = Text.__qualname__ = f"{battle.__name__}Text"
    return Text


@codi_kit.hookimpl
def register_envs(register):
    for name, battle in BATTLES.items():
        register(name, battle)


@codi_kit.hookimpl
def register_text_converters(register):
    for name, battle in BATTLES.items():
        register(name, text_for(battle))
