"""The one tiny pipeline the command-line tests run: the smoke profile on a few episodes and a few
updates. A test names only what it needs to differ (``tiny(**{"collect.episodes": 40})``), so
what each test changes is visible where it is used.

Where a new test goes: beside the tests of the module it checks (``test_<concern>.py``); a
command-line run uses ``tiny()``; real small data and models come from ``conftest.py`` (CN
datasets, the fake OpenAI server on 127.0.0.1, a tiny HF model saved to a temp dir).
"""
from __future__ import annotations

SMALL = {"collect.episodes": 24, "evaluate.episodes": 4, "learner.steps": 20, "student.steps": 20}


def settings(**changes) -> list[str]:
    """``--set KEY=VALUE`` for every setting of the tiny pipeline with ``changes`` applied (a
    value of None leaves the setting to the profile)."""
    chosen = {**SMALL, **changes}
    return [part for key, value in chosen.items() if value is not None for part in ("--set", f"{key}={value}")]


def tiny(quiet: bool = True, **changes) -> list[str]:
    """The command-line options of the tiny pipeline: the smoke profile and ``settings(**changes)``."""
    return ["--profile", "smoke", *(["--quiet"] if quiet else []), *settings(**changes)]
