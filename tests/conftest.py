"""Shared fixtures: small real MPE datasets, a CLI runner, inline plugin registration."""
from __future__ import annotations

import contextlib

import pytest
from click.testing import CliRunner

from codi_kit import plugins
from codi_kit.collect import collect_with_references
from codi_kit.progress import set_quiet

set_quiet(True)


@pytest.fixture(scope="session")
def cn_env():
    registration = plugins.lookup("env", "mpe/cn")
    env = plugins.configure(registration, {})
    yield env
    env.close()


@pytest.fixture(scope="session")
def cn_dataset(cn_env):
    """60 imbalanced CN episodes with R_lo and R_hi measured."""
    return collect_with_references(cn_env, "imbalanced", 60, seed=0)


@pytest.fixture
def runner():
    return CliRunner()


@contextlib.contextmanager
def inline_plugin(plugin, name="inline-test-plugin"):
    """Register a plugin object for one test, always unregistered afterwards (llm's habit)."""
    manager = plugins.plugin_manager()
    manager.register(plugin, name=name)
    try:
        yield
    finally:
        manager.unregister(name=name)
