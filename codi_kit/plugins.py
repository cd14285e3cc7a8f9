"""The one plugin manager: loads entry points of group ``codi_kit`` and builds the name registry."""
from __future__ import annotations

import importlib.metadata
import os
from functools import lru_cache

import attrs
import pluggy

from codi_kit import hookspecs
from codi_kit.errors import PluginError

ENTRY_POINT_GROUP = "codi_kit"
# Comma-separated entry-point names to load (empty: none); unset loads all (llm's LLM_LOAD_PLUGINS).
LOAD_PLUGINS_VARIABLE = "CODI_KIT_LOAD_PLUGINS"

KIND_HOOKS = {
    "env": "register_envs",
    "text_converter": "register_text_converters",
    "labeler": "register_labelers",
    "augmenter": "register_augmenters",
    "learner": "register_learners",
}


_DISTRIBUTIONS: dict[str, tuple[str, str]] = {}  # entry-point name -> (distribution, version)


@attrs.frozen
class Registration:
    kind: str
    name: str
    factory: type
    plugin: str
    distribution: str
    version: str


def _entry_points():
    selected = os.environ.get(LOAD_PLUGINS_VARIABLE)
    wanted = None if selected is None else {n.strip() for n in selected.split(",") if n.strip()}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is None or entry_point.name in wanted:
            yield entry_point


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, with every selected entry point loaded and checked."""
    manager = pluggy.PluginManager("codi_kit")
    manager.add_hookspecs(hookspecs)
    for entry_point in _entry_points():
        try:
            module = entry_point.load()
        except Exception as error:  # a broken plugin must name itself
            raise PluginError(f"plugin '{entry_point.name}' ({entry_point.value}) failed to load: {error}") from error
        if manager.is_registered(module):
            continue
        manager.register(module, name=entry_point.name)
        dist = entry_point.dist
        _DISTRIBUTIONS[entry_point.name] = (dist.name, dist.version) if dist else ("unknown", "")
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(f"plugin '{error.plugin_name}' implements an unknown hook: {error}") from error
    return manager


def registrations(kind: str | None = None) -> list[Registration]:
    """Every registered component (of one kind), in a stable order; duplicates are errors."""
    manager = plugin_manager()
    found: dict[tuple[str, str], Registration] = {}
    for each_kind, hook_name in KIND_HOOKS.items():
        if kind is not None and each_kind != kind:
            continue
        for implementation in getattr(manager.hook, hook_name).get_hookimpls():
            plugin = implementation.plugin_name
            distribution, version = _DISTRIBUTIONS.get(plugin, ("(registered in process)", ""))

            def register(name: str, factory: type, _kind=each_kind, _plugin=plugin, _dist=distribution, _ver=version):
                key = (_kind, name)
                if key in found:
                    raise PluginError(
                        f"{_kind} '{name}' is registered twice: by plugin '{found[key].plugin}' "
                        f"({found[key].distribution}) and by plugin '{_plugin}' ({_dist})"
                    )
                found[key] = Registration(_kind, name, factory, _plugin, _dist, _ver)

            try:
                implementation.function(register=register)
            except PluginError:
                raise
            except Exception as error:
                raise PluginError(f"plugin '{plugin}' failed in {hook_name}: {error}") from error
    return sorted(found.values(), key=lambda r: (list(KIND_HOOKS).index(r.kind), r.name))


def lookup(kind: str, name: str) -> Registration:
    """The registration of ``name``; an unknown name lists the names that exist."""
    known = registrations(kind)
    for registration in known:
        if registration.name == name:
            return registration
    names = ", ".join(r.name for r in known) or "none"
    raise PluginError(f"unknown {kind} '{name}'; registered {kind}s: {names}")


def setting_names(registration: Registration) -> set[str]:
    """The names of the settings a plugin's ``Config`` declares."""
    config_class = getattr(registration.factory, "Config", None)
    if config_class is None:
        raise PluginError(f"{registration.kind} '{registration.name}' (plugin '{registration.plugin}') has no Config class")
    return {field.name for field in attrs.fields(config_class)}


def settings_instance(registration: Registration, settings: dict):
    """The plugin's ``Config`` built from ``settings``; an unknown or ill-typed setting names the plugin."""
    config_class = registration.factory.Config
    known = setting_names(registration)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise PluginError(
            f"{registration.kind} '{registration.name}' has no setting {', '.join(map(repr, unknown))}; "
            f"its settings: {', '.join(sorted(known)) or 'none'}"
        )
    try:
        return config_class(**settings)
    except (TypeError, ValueError) as error:
        reason = error.args[0] if error.args else error  # attrs validators put the message first
        raise PluginError(f"{registration.kind} '{registration.name}': bad settings {settings}: {reason}") from error


def configure(registration: Registration, settings: dict):
    """Build the component from its settings; a failure names the plugin."""
    config = settings_instance(registration, settings)
    try:
        return registration.factory(config)
    except PluginError:
        raise
    except Exception as error:
        raise PluginError(f"{registration.kind} '{registration.name}' (plugin '{registration.plugin}') failed to start: {error}") from error


def config_of(registration: Registration, settings: dict) -> dict:
    """The full settings (defaults filled in) that determine a component, for hashing and meta."""
    return attrs.asdict(settings_instance(registration, settings))
