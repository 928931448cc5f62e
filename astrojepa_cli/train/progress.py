"""The rich progress bar of ``pretrain`` (stderr): epoch, step, loss terms, images/s and ETA."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from astrojepa_cli.console import stderr


class TrainingProgress:
    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]pretrain[/] epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[terms]}"), TextColumn("{task.fields[rate]} img/s"), TimeRemainingColumn(),
            console=stderr, disable=not enabled,
        )
        self.task = self.progress.add_task("pretrain", total=total, completed=start, epoch=0, terms="", rate="-")

    def __enter__(self) -> "TrainingProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, epoch: int, means: dict[str, float], rate: float) -> None:
        terms = " ".join(f"{k} {v:.4g}" for k, v in means.items())
        self.progress.update(self.task, completed=step, epoch=epoch, terms=terms, rate=f"{rate:.0f}")

    def warn(self, message: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/] {message}", highlight=False)
