"""Rich progress bars for every long loop, silenced by ``--quiet``."""
from __future__ import annotations

import contextlib

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


class _Silent:
    def advance(self, amount: float = 1) -> None:
        pass

    def update(self, **fields) -> None:
        pass


class _Bar:
    def __init__(self, progress: Progress, task):
        self.progress, self.task = progress, task

    def advance(self, amount: float = 1) -> None:
        self.progress.advance(self.task, amount)
        speed = self.progress.tasks[self.task].speed
        if speed:
            self.progress.update(self.task, rate=f"{speed:,.1f}/s")

    def update(self, **fields) -> None:
        """Show extra fields (e.g. ``loss=0.12``) after the bar."""
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        self.progress.update(self.task, info=text)


@contextlib.contextmanager
def progress_bar(total: float, description: str):
    """A bar with rate and ETA; yields an object with ``advance(n)`` and ``update(**fields)``."""
    if _quiet:
        yield _Silent()
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=console, transient=False) as progress:
        yield _Bar(progress, progress.add_task(description, total=total, info="", rate=""))


def say(message: str) -> None:
    """A status line on stderr (suppressed when quiet)."""
    if not _quiet:
        console.print(message)


def warn(message: str) -> None:
    """A warning on stderr, shown even when quiet."""
    Console(stderr=True).print(f"[bold yellow]warning:[/bold yellow] {message}", highlight=False)
