"""The README documents every hook with its exact signature (datasette's test_docs habit)."""
import inspect
import re
from pathlib import Path

from codi_kit import hookspecs
from codi_kit.plugins import KIND_HOOKS

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_hook_has_a_heading_with_its_exact_signature_and_an_example():
    for hook in KIND_HOOKS.values():
        function = getattr(hookspecs, hook)
        parameters = ", ".join(inspect.signature(function).parameters)
        heading = f"### `{hook}({parameters})`"
        assert heading in README, heading
        section = README.split(heading, 1)[1].split("\n### ", 1)[0]
        assert f"def {hook}(register):" in section and "@codi_kit.hookimpl" in section


def test_every_documented_hook_exists():
    documented = set(re.findall(r"### `(register_\w+)\(", README))
    assert documented == set(KIND_HOOKS.values())


def test_quick_start_has_the_two_commands_ci_runs():
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    test_command = next(line for line in README.splitlines() if line.endswith("python -m pytest"))
    assert test_command in ci
    assert any(line.endswith("pip install . && codi-kit run") for line in README.splitlines())
