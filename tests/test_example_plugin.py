"""The third-party example plugin installs with pip and shows up like a bundled one."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from codi_kit.data.dataset import Dataset

EXAMPLE = Path(__file__).parent.parent / "examples" / "codi-kit-example-env"


def codi_kit(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "codi_kit.cli", *arguments], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture
def installed_example():
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", str(EXAMPLE)], check=True, capture_output=True, timeout=300)
    try:
        yield
    finally:
        subprocess.run([*pip, "uninstall", "-y", "codi-kit-example-env"], check=True, capture_output=True)


def test_example_plugin_is_listed_and_collects_after_pip_install(installed_example, tmp_path):
    listed = codi_kit("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    found = {(p["kind"], p["name"]): p for p in json.loads(listed.stdout)}
    assert found[("env", "example/tag")]["distribution"] == "codi-kit-example-env"
    assert ("env", "mpe/cn") in found  # bundled plugins still load beside it
    collected = codi_kit("collect", "--env", "example/tag", "--episodes", "20", "--out", str(tmp_path / "tag.npz"), "--quiet")
    assert collected.returncode == 0, collected.stderr
    data = Dataset.load(tmp_path / "tag.npz")
    assert data.obs.shape[:3] == (20, 25, 3) and (data.expert_mask.sum(1) == 1).all()
    assert data.meta["normalization"]["R_hi"] > data.meta["normalization"]["R_lo"]
