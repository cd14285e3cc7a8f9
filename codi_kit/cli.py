"""The ``codi-kit`` command: one command per stage, ``run`` for all of them, ``plugins``, ``report``."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import attrs
import click
from rich.console import Console
from rich.table import Table

from codi_kit import plugins
from codi_kit.run.config import PROFILES, build_config
from codi_kit.errors import CodiKitError
from codi_kit.data.formats import EXPORTERS, IMPORTERS
from codi_kit.progress import say, set_quiet, warn

stdout = Console()


class FriendlyGroup(click.Group):
    """Errors the user can fix are one line on stderr and exit status 2, never a traceback."""

    def invoke(self, context):
        try:
            return super().invoke(context)
        except CodiKitError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(2)


def common_options(function):
    """Options shared by every stage command."""
    options = [
        click.option("--profile", type=click.Choice(list(PROFILES)), default="quick", show_default=True,
                     help="Scale: smoke (seconds), quick (minutes on a CPU), standard (the paper's data on a CPU, about an hour a run), paper (the paper's scale, for a GPU)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file of settings."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a setting, e.g. --set env.agents=4 (repeatable)."),
        click.option("--seed", type=int, help="Seeds random, NumPy, torch and the environments."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where torch runs (default auto)."),
        click.option("--force", is_flag=True, help="Recompute stages even when a matching artifact exists."),
        click.option("--quiet", is_flag=True, help="No progress bars or status lines."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def pipeline_options(function):
    options = [
        click.option("--env", help="Environment plugin (default mpe/cn)."),
        click.option("--labeler", help="Labeler plugin (default rule)."),
        click.option("--augmenter", help="Augmenter plugin (default codi; none is the original data alone)."),
        click.option("--learner", help="Learner plugin (default bc)."),
        click.option("--dataset", type=click.Path(dir_okay=False), help="Use this dataset file instead of collecting."),
        click.option("--out", type=click.Path(file_okay=False), help="Run directory (default runs/<env>-<augmenter>-<learner>-s<seed>)."),
    ]
    for option in reversed(options):
        function = option(function)
    return common_options(function)


def _layers(overrides, seed, device, env=None, labeler=None, augmenter=None, learner=None, dataset=None,
            **extra) -> tuple[list[str], dict]:
    """The command line as ``build_config`` takes it: (--set overrides, options as dotted keys)."""
    overrides = list(overrides)
    if dataset and env is None:  # a dataset file that names its env runs on that env (and its settings)
        env, settings = _env_of(dataset)
        overrides = [f"env.{key}={json.dumps(value)}" for key, value in settings.items()] + overrides
    return overrides, {"seed": seed, "device": device, "env.name": env, "labeler.name": labeler,
                       "augmenter.name": augmenter, "learner.name": learner, "collect.dataset": dataset, **extra}


def _config(profile, config_file, overrides, seed, device, **names):
    overrides, options = _layers(overrides, seed, device, **names)
    return build_config(profile, config_file, overrides, **options)


def _settings_table(found) -> Table:
    table = Table(title="resolved settings (the last layer that names a key sets it)")
    for column in ("section", "setting", "value", "set by"):
        table.add_column(column)
    for setting in found:
        table.add_row(setting.section or "-", setting.key, json.dumps(setting.value, default=str), setting.source)
    return table


def _write_settings(root: Path, profile, config_file, overrides: list[str], options: dict) -> None:
    """settings.json in the run directory: every resolved setting and the layer that set it."""
    from codi_kit.run.atomic import write_json
    from codi_kit.run.settings_sources import resolved_settings

    found = resolved_settings(profile, config_file, overrides, **options)
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "settings.json", [attrs.asdict(s) for s in found])


def _env_of(dataset: str) -> tuple[str | None, dict]:
    """The env a dataset file's metadata names (``env``, ``env_settings``), checked to be registered."""
    from codi_kit.data.dataset import read_metadata
    from codi_kit.errors import DatasetError, PluginError

    path = Path(dataset)
    meta = read_metadata(path)
    name = meta.get("env")
    if name is None:
        return None, {}
    try:
        plugins.lookup("env", name)
    except PluginError as error:
        raise DatasetError(path.with_suffix(".json"), "env", f"names env '{name}', which no installed plugin registers "
                                                             f"({error}); choose one with --env") from None
    settings = meta.get("env_settings")
    return name, settings if isinstance(settings, dict) else {}


def _run_directory(config, out) -> Path:
    if out:
        return Path(out)
    name = f"{config['env']['name'].replace('/', '-')}-{config['augmenter']['name']}-{config['learner']['name']}-s{config['seed']}"
    return Path("runs") / name


def _stage_command(stage: str):
    def command(profile, config_file, overrides, seed, device, force, quiet, out, **names):
        from codi_kit.run.pipeline import Pipeline
        from codi_kit.report.run_report import run_tables

        set_quiet(quiet)
        overrides, options = _layers(overrides, seed, device, **names)
        config = build_config(profile, config_file, overrides, **options)
        root = _run_directory(config, out)
        _write_settings(root, profile, config_file, overrides, options)
        pipeline = Pipeline(config, root, force=force)
        try:
            outcome = pipeline.run_until(stage)
        finally:
            pipeline.close()
        if stage == "report":
            if not quiet:
                for table in run_tables(outcome):
                    stdout.print(table)
            say(f"wrote {root / 'results.json'} and {root / 'report.md'}")
        elif outcome is not None:
            say(f"{stage}: {outcome.folder}")

    command.__name__ = stage
    return command


@click.group(cls=FriendlyGroup)
@click.version_option(package_name="codi-kit")
def main():
    """codi-kit: offline MARL data augmentation with compositional diffusion (CODI)."""


main.command("run", help="Run every stage (collect, label, train, generate, learn, evaluate, report).")(
    pipeline_options(functools.wraps(_stage_command("report"))(_stage_command("report"))))
for _stage, _help in [("label", "Label agent quality of every segment (runs collect first if needed)."),
                      ("train", "Train the augmenter's models once (runs the stages before it if needed)."),
                      ("generate", "Generate augmented episodes from the trained models (runs the stages before it if needed)."),
                      ("learn", "Train the learner on original + generated data."),
                      ("evaluate", "Roll out the learned policy and normalise its return.")]:
    main.command(_stage, help=_help)(pipeline_options(_stage_command(_stage)))


@main.command(help="Collect an offline dataset: to a file (--out data.npz) or into a run directory.")
@click.option("--env", help="Environment plugin (default mpe/cn).")
@click.option("--episodes", type=int, help="Episodes to collect (profile default: quick 2000).")
@click.option("--protocol", type=click.Choice(["imbalanced", "balanced", "random"]), help="Behaviour protocol (default imbalanced).")
@click.option("--out", type=click.Path(), help="A .npz file, or a run directory.")
@common_options
def collect(env, episodes, protocol, out, profile, config_file, overrides, seed, device, force, quiet):
    from codi_kit.data.collect import collect_with_references
    from codi_kit.data.dataset import Dataset
    from codi_kit.run.pipeline import Pipeline

    set_quiet(quiet)
    config = _config(profile, config_file, overrides, seed, device, env=env,
                     **{"collect.episodes": episodes, "collect.protocol": protocol})
    if out and out.endswith(".npz"):
        pipeline = Pipeline(config, Path(out).parent)
        try:
            settings = config["collect"]
            dataset = collect_with_references(pipeline.env, settings["protocol"], int(settings["episodes"]), int(config["seed"]))
        finally:
            pipeline.close()
        dataset.meta["env_settings"] = pipeline.identity("env")["settings"]
        path = dataset.save(out)
        summary, norm = dataset.summary(), dataset.meta["normalization"]
        say(f"wrote {path}: {summary['episodes']} episodes, mean team return {summary['return_mean']:.3f} "
            f"(R_lo {norm['R_lo']:.3f}, R_hi {norm['R_hi']:.3f})")
        Dataset.load(path)  # what was written must read back
        return
    _stage_command("collect")(profile, config_file, overrides, seed, device, force, quiet, out,
                              env=env)


@main.command(help="Report runs: the table over one or more run directories (mean ± std over seeds).")
@click.argument("runs", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the table as Markdown (and JSON beside it).")
@click.option("--quiet", is_flag=True)
def report(runs, out, quiet):
    from codi_kit.report.run_report import aggregate, aggregate_markdown, aggregate_table, write_text

    set_quiet(quiet)
    found = []
    for run in runs or [str(p) for p in sorted(Path("runs").glob("*")) if p.is_dir()]:
        path = Path(run) / "results.json"
        if not path.exists():
            raise CodiKitError(f"{path}: no results (run 'codi-kit run --out {run}' first)")
        try:
            found.append(json.loads(path.read_text()))
        except json.JSONDecodeError as error:
            raise CodiKitError(f"{path}: not valid JSON: {error}") from None
    if not found:
        raise CodiKitError("no runs to report: pass run directories, or run 'codi-kit run' first")
    rows = aggregate(found)
    stdout.print(aggregate_table(rows))
    if out:
        write_text(Path(out), aggregate_markdown(rows))
        write_text(Path(out).with_suffix(".json"), json.dumps(rows, indent=2))
        say(f"wrote {out}")


@main.command("config", help="Print every setting a run with these options resolves to, and which layer set it "
                              "(default and its class, profile, the plugin's profile, config file, command line).")
@pipeline_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def config_command(profile, config_file, overrides, seed, device, force, quiet, out, as_json, **names):
    from codi_kit.run.settings_sources import resolved_settings

    overrides, options = _layers(overrides, seed, device, **names)
    found = resolved_settings(profile, config_file, overrides, **options)
    if as_json:
        click.echo(json.dumps([attrs.asdict(s) for s in found], indent=2, default=str))
    else:
        stdout.print(_settings_table(found))


@main.command(help="Redraw a finished run's figures (learning curve, real and generated episodes, labels) from its stages.")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--quiet", is_flag=True)
def plot(run, quiet):
    from codi_kit.report.figures import draw_run_figures, stage_folders

    set_quiet(quiet)
    root = Path(run)
    path = root / "results.json"
    if not path.exists():
        raise CodiKitError(f"{path}: no results (run 'codi-kit run --out {run}' first)")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CodiKitError(f"{path}: not valid JSON: {error}") from None
    registration = plugins.lookup("env", results["env"])
    env = plugins.configure(registration, plugins.config_of(registration, results.get("env_settings") or {}))
    try:
        figures = draw_run_figures(root, results, env, stage_folders(root, results))
    finally:
        env.close()
    for figure in figures:
        say(f"{root / figure.file}: {figure.title}")
    if not figures:
        raise CodiKitError(f"{run}: no stage folder of this run is left to draw from")


@main.command(help="Run a grid (envs x augmenters x learners x seeds) into one bench folder and report it as the paper's Table 1.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML file: a [bench] table (env, agents, augmenter, learner, seeds, profile, labeler, device, set) "
                   "and ordinary settings for every cell.")
@click.option("--env", multiple=True, help="Environment plugin(s); repeatable or a comma list (default mpe/cn).")
@click.option("--agents", multiple=True, help="env.agents values, e.g. 3,4,5 (the paper's Figure 4).")
@click.option("--augmenter", multiple=True, help="Augmenter(s): plugin names, or the ablation columns codi-wo-com "
                                                   "and codi-w-pri (default none,codi).")
@click.option("--learner", multiple=True, help="Learner(s) (default bc).")
@click.option("--seeds", help="Seeds, e.g. 0,1,2 (default 0).")
@click.option("--labeler", help="Labeler for every augmenter that reads labels (default rule).")
@click.option("--profile", type=click.Choice(list(PROFILES)), help="Scale of every cell (default quick).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="A setting for every cell (repeatable).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where torch runs in each task.")
@click.option("--out", default="bench", show_default=True, type=click.Path(file_okay=False), help="Bench folder.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, help="Local backend: worker processes (default: one per core).")
@click.option("--ray-address", help="Ray backend: 'auto' or a cluster address (default: start a local Ray).")
@click.option("--cpus-per-task", type=float, default=1, show_default=True, help="Ray backend: CPUs each task requests.")
@click.option("--gpus-per-task", type=float, default=0, show_default=True, help="Ray backend: GPUs each task requests.")
@click.option("--quiet", is_flag=True)
def bench(config_file, env, agents, augmenter, learner, seeds, labeler, profile, overrides, device, out, backend, workers,
          ray_address, cpus_per_task, gpus_per_task, quiet):
    from codi_kit.bench.backends import LocalBackend, RayBackend
    from codi_kit.bench.grid import load_grid
    from codi_kit.bench.runner import run_bench
    from codi_kit.bench.table import table1_markdown

    set_quiet(quiet)
    grid = load_grid(config_file, env=env, agents=agents, augmenter=augmenter, learner=learner, seeds=seeds,
                     labeler=labeler, profile=profile, set=overrides, device=device)
    runner = RayBackend(ray_address, cpus_per_task, gpus_per_task) if backend == "ray" else LocalBackend(workers)
    try:
        records = run_bench(grid, out, runner)
    finally:
        runner.close()
    if not quiet:
        click.echo("\n".join(table1_markdown(records)))
    failed = sum(r["status"] != "ok" for r in records)
    say(f"wrote {Path(out) / 'report.md'} ({len(records) - failed} cells finished, {failed} failed)")
    if failed:  # everything finished is kept; a rerun retries only what is missing
        click.echo(f"Error: {failed} of {len(records)} cells failed (see {Path(out) / 'report.md'} and "
                   f"{Path(out) / 'errors'})", err=True)
        sys.exit(1)


@main.command("plugins", help="List every registered environment, converter, labeler, augmenter and learner.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_plugins(as_json):
    found = plugins.registrations()
    if as_json:
        click.echo(json.dumps([{"kind": r.kind, "name": r.name, "distribution": r.distribution, "version": r.version}
                               for r in found], indent=2))
        return
    table = Table(title="codi-kit plugins")
    for column in ("kind", "name", "plugin", "distribution", "version"):
        table.add_column(column)
    for r in found:
        table.add_row(r.kind, r.name, r.plugin, r.distribution, r.version)
    stdout.print(table)


@main.command("import", help="Import a dataset another tool wrote (FORMAT: offpymarl, madiff, og-marl) as a codi-kit "
                             ".npz for --dataset.")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(list(IMPORTERS)))
@click.argument("path", type=click.Path())
@click.option("--env", required=True, help="The env plugin the data comes from (its spec is checked against the data).")
@click.option("--set", "overrides", multiple=True, metavar="env.KEY=VALUE", help="An env setting, e.g. env.agents=4.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .npz to write (metadata beside it).")
def import_command(format_name, path, env, overrides, out):
    import attrs

    from codi_kit.data.dataset import Dataset, check_import

    config = build_config("quick", None, overrides, env={"name": env})
    registration = plugins.lookup("env", env)
    settings = plugins.config_of(registration, {k: v for k, v in config["env"].items() if k != "name"})
    adapter = plugins.configure(registration, settings)
    spec = adapter.spec
    adapter.close()
    dataset = IMPORTERS[format_name](path, spec)
    if (dataset.agents, dataset.obs.shape[3]) != (spec.agents, spec.obs_dim):
        raise CodiKitError(f"{path}: obs has {dataset.agents} agents x {dataset.obs.shape[3]} features, but env "
                           f"'{env}' has {spec.agents} x {spec.obs_dim} (set its size with --set env.agents=N)")
    dataset.meta.update({"env": env, "env_settings": settings, "spec": attrs.asdict(spec)})
    check_import(dataset, out)
    written = dataset.save(out)
    Dataset.load(written)  # what was written must read back
    summary = dataset.summary()
    say(f"wrote {written}: {summary['episodes']} episodes from {format_name} {path}, mean team return "
        f"{summary['return_mean']:.3f}")
    if dataset.expert_mask is None:
        warn(f"{path}: no expert mask in this data, so privileged labels (--labeler privileged, CODI w Pri.) are "
             "unavailable for it; the other labelers work")


@main.command("export", help="Write datasets (e.g. a run's original + generated) in another tool's format.")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(list(EXPORTERS)))
@click.argument("datasets", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The folder to write.")
def export_command(format_name, datasets, out):
    from codi_kit.data.dataset import Dataset

    merged = Dataset.merge(*(Dataset.load(d) for d in datasets))
    spec = merged.meta.get("spec") or {}
    written = EXPORTERS[format_name](merged, out, actions=spec.get("actions"))
    say(f"wrote {written}: {merged.episodes} episodes ({', '.join(merged.meta.get('sources', []))}) as {format_name}")


@main.command("dataset", help="Validate a dataset file and print its summary statistics.")
@click.argument("path", type=click.Path(dir_okay=False))
def dataset_command(path):
    from codi_kit.data.dataset import Dataset, check_import

    loaded = Dataset.load(path)
    check_import(loaded, path)
    click.echo(json.dumps({"file": str(path), "meta": loaded.meta, "summary": loaded.summary()}, indent=2, default=str))


if __name__ == "__main__":
    main()
