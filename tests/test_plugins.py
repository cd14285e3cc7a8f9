import json
import os
import subprocess
import sys

import pytest

import codi_kit
from codi_kit import plugins
from codi_kit.cli import main
from codi_kit.errors import PluginError
from conftest import inline_plugin

BUNDLED = {("env", "mpe/cn"), ("env", "mpe/world"), ("labeler", "privileged"), ("augmenter", "none"), ("learner", "bc")}


def test_plugins_json_lists_bundled_components_with_distribution(runner):
    result = runner.invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert all(set(item) == {"kind", "name", "distribution", "version"} for item in listed)
    found = {(item["kind"], item["name"]): item for item in listed}
    assert BUNDLED <= set(found)
    assert all(found[key]["distribution"] == "codi-kit" and found[key]["version"] for key in BUNDLED)


def test_plugins_table_shows_every_name(runner):
    result = runner.invoke(main, ["plugins"])
    assert result.exit_code == 0
    for _, name in BUNDLED:
        assert name in result.output


def test_duplicate_name_names_both_providers():
    class Duplicate:
        @codi_kit.hookimpl
        def register_learners(self, register):
            register("bc", object)

    with inline_plugin(Duplicate(), "duplicate-bc"):
        with pytest.raises(PluginError) as error:
            plugins.registrations("learner")
    message = str(error.value)
    assert "'bc' is registered twice" in message and "'bc'" in message and "duplicate-bc" in message


def test_unknown_name_lists_existing_names():
    with pytest.raises(PluginError, match=r"unknown learner 'nope'; registered learners: .*bc"):
        plugins.lookup("learner", "nope")


def test_exception_inside_plugin_names_the_plugin():
    class Broken:
        @codi_kit.hookimpl
        def register_augmenters(self, register):
            raise RuntimeError("boom")

    with inline_plugin(Broken(), "broken-augmenters"):
        with pytest.raises(PluginError, match="plugin 'broken-augmenters' failed in register_augmenters: boom"):
            plugins.registrations()


def test_failing_constructor_names_the_component():
    import attrs

    class Exploding:
        @attrs.frozen
        class Config:
            pass

        def __init__(self, config):
            raise RuntimeError("no simulator")

    class Provider:
        @codi_kit.hookimpl
        def register_envs(self, register):
            register("exploding", Exploding)

    with inline_plugin(Provider(), "exploding-env"):
        registration = plugins.lookup("env", "exploding")
        with pytest.raises(PluginError, match="env 'exploding' .*exploding-env.* failed to start: no simulator"):
            plugins.configure(registration, {})


def test_unknown_setting_names_plugin_and_lists_settings():
    registration = plugins.lookup("learner", "bc")
    with pytest.raises(PluginError, match="learner 'bc' has no setting 'bogus'; its settings: .*steps"):
        plugins.configure(registration, {"bogus": 1})


def test_misspelled_hook_fails_check_pending():
    class Misspelled:
        @codi_kit.hookimpl
        def register_learner(self, register):  # missing the final s
            pass

    manager = plugins.plugin_manager()
    manager.register(Misspelled(), name="misspelled")
    try:
        import pluggy

        with pytest.raises(pluggy.PluginValidationError):
            manager.check_pending()
    finally:
        manager.unregister(name="misspelled")


def test_environment_variable_restricts_entry_points():
    environment = dict(os.environ, CODI_KIT_LOAD_PLUGINS="mpe,bc")
    output = subprocess.run([sys.executable, "-m", "codi_kit.cli", "plugins", "--json"], env=environment,
                            capture_output=True, text=True, check=True).stdout
    names = {item["name"] for item in json.loads(output)}
    assert names == {"mpe/cn", "mpe/world", "bc", "bc50"}  # one entry point per module
    environment["CODI_KIT_LOAD_PLUGINS"] = ""
    output = subprocess.run([sys.executable, "-m", "codi_kit.cli", "plugins", "--json"], env=environment,
                            capture_output=True, text=True, check=True).stdout
    assert json.loads(output) == []


def test_every_hook_is_documented_and_implemented_by_a_bundled_plugin():
    from codi_kit import hookspecs

    for kind, hook in plugins.KIND_HOOKS.items():
        spec = getattr(hookspecs, hook)
        assert spec.__doc__ and "register(" in spec.__doc__, hook
        bundled = [r for r in plugins.registrations(kind) if r.distribution == "codi-kit"]
        assert bundled, f"no bundled plugin implements {hook}"
