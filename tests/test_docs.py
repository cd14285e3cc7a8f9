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


def test_the_readme_env_example_is_a_complete_plugin_with_an_expert_and_a_rule_judge():
    """The README's register_envs example, run as written: registered, collected with the expert
    protocols, judged."""
    import numpy as np

    from codi_kit.data.collect import collect_with_references

    section = README.split("### `register_envs(register)`", 1)[1].split("\n### ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(code, "README register_envs example", "exec"), namespace)
    registered = {}
    namespace["register_envs"](lambda name, factory: registered.__setitem__(name, factory))
    env_class = registered["my/spread2"]
    env = env_class(env_class.Config())
    data = collect_with_references(env, "imbalanced", 30, seed=0)
    normalization = data.meta["normalization"]
    assert normalization["R_hi"] > normalization["R_lo"] + 5  # the expert is one
    judged = [env.rule_judge(data.obs[e, s:s + 8], data.actions[e, s:s + 8]) for e in range(10) for s in (0, 10)]
    experts = [int(data.expert_mask[e].argmax()) for e in range(10) for s in (0, 10)]
    assert all(isinstance(j, int) for j in judged) and np.mean(np.equal(judged, experts)) > 0.6
    env.close()


def test_every_code_package_is_installed_by_pyproject():
    """``pip install .`` installs only the packages pyproject lists; the tests import the source
    tree, so a package left out passes here and fails for users."""
    import tomllib

    root = Path(__file__).parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "codi_kit").rglob("__init__.py")}
    found |= {"codi_kit_plugins." + ".".join(p.parent.relative_to(root / "plugins").parts)
              for p in (root / "plugins").rglob("__init__.py") if p.parent != root / "plugins"}
    assert found - {"codi_kit_plugins."} <= listed, sorted(found - listed)
