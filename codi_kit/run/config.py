"""Run configuration: defaults < profile < TOML file < ``--set key=value`` overrides."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path

from codi_kit.errors import CodiKitError

DEFAULTS = {
    "seed": 0,
    "device": "auto",
    "env": {"name": "mpe/cn"},
    "collect": {"episodes": 2000, "protocol": "imbalanced"},
    "label": {"horizon": 8, "teacher_fraction": 0.1},
    "labeler": {"name": "rule"},
    "student": {},
    "text_converter": {},
    "augmenter": {"name": "codi"},
    # a generate stage that yields fewer than minimum_share of the episodes its augmenter set out to
    # make stops the run (learners would see the original data under the augmenter's name), unless
    # allow_shortfall; then results.json and the report say so
    "generate": {"minimum_share": 0.1, "allow_shortfall": False},
    "learner": {"name": "bc"},
    "evaluate": {"episodes": 200, "greedy": True},
    # a run with an augmenter also trains and evaluates its learner on the original data alone and
    # reports both side by side (one extra learn + evaluate stage)
    "report": {"baseline": True},
}

# Pipeline-level sizes per profile; plugins add their own per-profile values (class PROFILES).
PROFILES = {
    "smoke": {"collect": {"episodes": 200}, "evaluate": {"episodes": 50}, "student": {"steps": 100, "evaluate_every": 50}},
    "quick": {"collect": {"episodes": 2000}, "evaluate": {"episodes": 200}},
    # the paper's data scale on a CPU: its 20000 collected episodes, learners trained until their
    # curves flatten, the CPU path's generator (plugins carry their own standard values)
    "standard": {"collect": {"episodes": 20000}, "evaluate": {"episodes": 200}},
    "paper": {"collect": {"episodes": 20000}, "evaluate": {"episodes": 1000}},  # paper section 4.1: 20k
}
PLUGIN_SECTIONS = ("env", "labeler", "augmenter", "learner")


def parse_value(text: str):
    """A TOML literal (``4``, ``0.5``, ``true``, ``"x"``, ``[1, 2]``), else the bare string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def set_key(config: dict, dotted: str, value) -> None:
    section = config
    *parents, last = dotted.split(".")
    for key in parents:
        section = section.setdefault(key, {})
        if not isinstance(section, dict):
            raise CodiKitError(f"--set {dotted}: '{key}' is not a section")
    section[last] = value


def deep_update(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def build_config(profile: str = "quick", config_file: str | dict | None = None, overrides: list[str] = (),
                 **options) -> dict:
    """Resolve the run configuration; ``config_file`` is a TOML path or its tables already read,
    ``options`` are CLI options already mapped to dotted keys."""
    if profile not in PROFILES:
        raise CodiKitError(f"unknown profile '{profile}'; profiles: {', '.join(PROFILES)}")
    config = deep_update(copy.deepcopy(DEFAULTS), PROFILES[profile])
    config["profile"] = profile
    if isinstance(config_file, dict):
        deep_update(config, config_file)
    elif config_file:
        path = Path(config_file)
        try:
            deep_update(config, tomllib.loads(path.read_text()))
        except FileNotFoundError:
            raise CodiKitError(f"{path}: no such config file") from None
        except tomllib.TOMLDecodeError as error:
            raise CodiKitError(f"{path}: not valid TOML: {error}") from None
    for dotted, value in options.items():
        if value is not None:
            set_key(config, dotted, value)
    for item in overrides:
        if "=" not in item:
            raise CodiKitError(f"--set '{item}': expected key=value, e.g. env.agents=4")
        key, text = item.split("=", 1)
        set_key(config, key.strip(), parse_value(text.strip()))
    return config


def plugin_settings(config: dict, section: str, registration) -> dict:
    """The plugin's settings: its per-profile values, then what the user set in ``[section]``."""
    settings = dict(getattr(registration.factory, "PROFILES", {}).get(config.get("profile", "quick"), {}))
    settings.update({k: v for k, v in config[section].items() if k != "name"})
    return settings
