"""Every resolved setting of a run and the layer that set it, so nothing that runs is hidden: the
default (and the class that declares it), the profile (the pipeline's, or the plugin's own
``PROFILES``, which for the diffusion augmenters hold the CPU path), the TOML file, or the command
line (``--set`` and the options such as ``--augmenter``). The last layer that names a key sets it."""
from __future__ import annotations

import tomllib
from pathlib import Path

import attrs

from codi_kit import plugins
from codi_kit.run.config import DEFAULTS, PLUGIN_SECTIONS, PROFILES, build_config, plugin_settings


@attrs.frozen
class Setting:
    section: str  # "" for top-level keys (seed, device, profile)
    key: str
    value: object
    source: str


def declaring_class(config_class: type, name: str) -> str:
    """The most derived class of ``config_class``'s bases that gave field ``name`` its default."""
    owner, default = None, object()
    for cls in reversed(config_class.__mro__):
        if attrs.has(cls):
            field = next((f for f in attrs.fields(cls) if f.name == name), None)
            if field is not None and (owner is None or repr(field.default) != repr(default)):
                owner, default = cls, field.default
    return owner.__qualname__ if owner is not None else config_class.__qualname__


def _file_tables(config_file) -> dict:
    if isinstance(config_file, dict):
        return config_file
    if config_file:
        return tomllib.loads(Path(config_file).read_text())  # build_config has already checked it reads
    return {}


def _command_line(options: dict, overrides: list[str]) -> dict:
    """What the command line names, as nested tables (values unparsed: only the keys matter)."""
    named: dict = {}
    for dotted in [k for k, v in options.items() if v is not None] + [o.split("=", 1)[0].strip() for o in overrides]:
        section = named
        *parents, last = dotted.split(".")
        for key in parents:
            section = section.setdefault(key, {})
        section[last] = True
    return named


def resolved_settings(profile: str = "quick", config_file=None, overrides: list[str] = (), **options) -> list[Setting]:
    """Every setting a run with these arguments resolves to, with its source (``options``: CLI
    options already mapped to dotted keys, as ``build_config`` takes them)."""
    config = build_config(profile, config_file, list(overrides), **options)
    layers = [("command line", _command_line(options, list(overrides))), ("config file", _file_tables(config_file)),
              (f"profile '{profile}'", PROFILES[profile]), ("default", DEFAULTS)]

    def source(section: str, key: str, plugin_profile: dict | None = None, fallback: str = "default",
               plugin: str = "") -> str:
        for name, tables in layers:
            table = tables.get(section, {}) if section else tables
            if isinstance(table, dict) and key in table:
                return name
            if name == f"profile '{profile}'" and plugin_profile is not None and key in plugin_profile:
                return f"profile '{profile}' of {section} '{plugin}'"
        return fallback

    found = [Setting("", key, config[key], source("", key)) for key in ("profile", "seed", "device")]
    for section, table in config.items():
        if not isinstance(table, dict):
            continue
        if section in PLUGIN_SECTIONS:
            registration = plugins.lookup(section, table["name"])
            settings = plugins.config_of(registration, plugin_settings(config, section, registration))
            own_profile = getattr(registration.factory, "PROFILES", {}).get(profile, {})
            found.append(Setting(section, "name", table["name"], source(section, "name")))
            for key, value in settings.items():
                default = f"default ({declaring_class(registration.factory.Config, key)})"
                found.append(Setting(section, key, value, source(section, key, own_profile, default, table["name"])))
        else:
            found += [Setting(section, key, value, source(section, key)) for key, value in table.items()]
    return found
