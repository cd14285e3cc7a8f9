"""A bench grid: environments (x agent counts) x augmenters x learners x seeds, and each cell's run config.

A grid comes from ``codi-kit bench`` options or the ``[bench]`` table of a TOML file; the file's other
tables are ordinary settings applied to every cell (defaults < profile < file < cell < ``--set``).
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import attrs

from codi_kit import plugins
from codi_kit.run.config import PLUGIN_SECTIONS, build_config
from codi_kit.errors import CodiKitError

# Columns of the paper's Table 1 that are settings of a plugin rather than plugins of their own.
ABLATIONS = {
    "codi-wo-com": {"augmenter.name": "codi", "augmenter.compose": False},  # CODI w/o Com.: joint guidance
    "codi-w-pri": {"augmenter.name": "codi", "labeler.name": "privileged"},  # CODI w Pri.: ground-truth labels
}
GRID_KEYS = {"env", "agents", "augmenter", "learner", "seeds", "profile", "labeler", "device", "set"}


@attrs.frozen
class Cell:
    env: str
    agents: int | None  # None: the env's own default
    augmenter: str  # a plugin name or an ABLATIONS column
    learner: str
    seed: int

    @property
    def name(self) -> str:
        agents = f"-n{self.agents}" if self.agents is not None else ""
        return f"{self.env.replace('/', '-')}{agents}-{self.augmenter}-{self.learner}-s{self.seed}"


@attrs.frozen
class Grid:
    envs: tuple[str, ...] = ("mpe/cn",)
    agents: tuple[int | None, ...] = (None,)
    augmenters: tuple[str, ...] = ("none", "codi")
    learners: tuple[str, ...] = ("bc",)
    seeds: tuple[int, ...] = (0,)
    profile: str = "quick"
    labeler: str | None = None
    device: str | None = None
    overrides: tuple[str, ...] = ()
    settings: dict = attrs.field(factory=dict)  # the TOML file's tables other than [bench]

    def cells(self) -> list[Cell]:
        return [Cell(env, agents, augmenter, learner, seed) for env in self.envs for agents in self.agents
                for augmenter in self.augmenters for learner in self.learners for seed in self.seeds]

    def _options(self, cell: Cell) -> dict:
        # a bench reports its own Original column, so no per-run baseline
        return {"seed": cell.seed, "device": self.device, "env.name": cell.env, "env.agents": cell.agents,
                "augmenter.name": cell.augmenter, "learner.name": cell.learner, "labeler.name": self.labeler,
                "report.baseline": False, **ABLATIONS.get(cell.augmenter, {})}

    def config(self, cell: Cell) -> dict:
        """The cell's run configuration. A ``--set`` on a plugin's section reaches the cells whose
        plugin has that setting (``augmenter.guidance_weight`` reaches codi, not none);
        ``check_overrides`` refuses one that no cell's plugin has."""
        plain = build_config(self.profile, self.settings, (), **self._options(cell))
        return build_config(self.profile, self.settings, [o for o in self.overrides if _reaches(o, plain)],
                            **self._options(cell))

    def check_overrides(self) -> None:
        plain = [build_config(self.profile, self.settings, (), **self._options(cell)) for cell in self.cells()]
        for override in self.overrides:
            if not any(_reaches(override, config) for config in plain):
                section, _, key = override.split("=", 1)[0].strip().partition(".")
                raise CodiKitError(f"--set {section}.{key}: no {section} in this grid has setting '{key}'")

    def describe(self) -> dict:
        return {"env": list(self.envs), "agents": list(self.agents), "augmenter": list(self.augmenters),
                "learner": list(self.learners), "seeds": list(self.seeds), "profile": self.profile,
                "labeler": self.labeler, "device": self.device, "set": list(self.overrides), "settings": self.settings}


def _reaches(override: str, config: dict) -> bool:
    """Whether ``--set section.key=value`` applies to a run of ``config``: always, unless the section
    names a plugin (env, labeler, augmenter, learner) whose settings lack ``key``."""
    section, _, key = override.split("=", 1)[0].strip().partition(".")
    if section not in PLUGIN_SECTIONS or not key or "." in key or key == "name":
        return True
    return key in plugins.setting_names(plugins.lookup(section, config[section]["name"]))


def split(values) -> list[str]:
    """Repeatable options that may also hold comma lists: ("a,b", "c") -> ["a", "b", "c"]."""
    if isinstance(values, (str, int)):
        values = [values]
    return [part.strip() for value in values or () for part in str(value).split(",") if part.strip()]


def _integers(values, what: str) -> list[int]:
    try:
        return [int(v) for v in split(values)]
    except ValueError:
        raise CodiKitError(f"bench {what}: expected integers such as 0,1,2, got {values!r}") from None


def load_grid(config_file: str | None = None, **options) -> Grid:
    """The grid from a TOML file's ``[bench]`` table, then command-line options (which win)."""
    spec, settings = {}, {}
    if config_file:
        path = Path(config_file)
        try:
            settings = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise CodiKitError(f"{path}: no such config file") from None
        except tomllib.TOMLDecodeError as error:
            raise CodiKitError(f"{path}: not valid TOML: {error}") from None
        spec = settings.pop("bench", {})
        unknown = set(spec) - GRID_KEYS
        if unknown:
            raise CodiKitError(f"{path}: [bench] has unknown key(s) {', '.join(sorted(unknown))}; "
                               f"known: {', '.join(sorted(GRID_KEYS))}")
    for key, value in options.items():
        if value not in (None, (), []):
            spec[key] = value
    grid = Grid(
        envs=tuple(split(spec.get("env", "mpe/cn"))),
        agents=tuple(_integers(spec["agents"], "agents")) if spec.get("agents") else (None,),
        augmenters=tuple(split(spec.get("augmenter", ("none", "codi")))),
        learners=tuple(split(spec.get("learner", "bc"))),
        seeds=tuple(_integers(spec.get("seeds", 0), "seeds")),
        profile=str(spec.get("profile", "quick")), labeler=spec.get("labeler"), device=spec.get("device"),
        overrides=tuple(spec.get("set", ())), settings=settings)
    for field in ("envs", "augmenters", "learners", "seeds"):
        values = getattr(grid, field)
        if not values or len(set(values)) != len(values):
            raise CodiKitError(f"bench {field}: give each value once, at least one ({list(values)})")
    grid.check_overrides()
    return grid
