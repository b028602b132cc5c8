"""Progress reporting for long stages: silent for tests and pipes, rich for a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable

from storylang.diagnostics import inert


QUEUED = "queued"  # a shot's row ("server: queued") once submitted, until the server starts it


class Progress:
    """The interface stages report to; this base class reports nothing but what it is told to `say`."""

    def __init__(self, say: Callable[[str], None] | None = None) -> None:
        self._say = say

    def say(self, text: str) -> None:
        """A line the user must see even without a terminal (another build holds the film)."""
        if self._say is not None:
            self._say(text)

    def stage(self, name: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def update(self, completed: int) -> None:
        pass

    def row(self, key: str, text: str | None) -> None:
        """A live line beside the bar (a running shot: server, node, step); None removes it."""

    def waiting(self, shots: list[str]) -> None:
        """The shots a render stage will render, none of them started yet (the preview page shows them queued)."""

    def close(self) -> None:
        pass


class RichProgress(Progress):
    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self.console = console
        self.bar = Bar(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=console, transient=False)
        self.bar.start()
        self.task = None
        self.rows: dict[str, int] = {}
        self.t0 = time.perf_counter()

    def say(self, text: str) -> None:
        self.bar.console.print(inert(text, newlines=True), markup=False, highlight=False)

    def stage(self, name: str, total: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.bar.tasks[-1].total)
        self.task = self.bar.add_task(name, total=max(total, 1))

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.bar.advance(self.task, n)

    def update(self, completed: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=completed)

    def row(self, key: str, text: str | None) -> None:
        task = self.rows.get(key)
        if text is None:
            if task is not None:
                self.bar.remove_task(self.rows.pop(key))
        elif task is None:
            self.rows[key] = self.bar.add_task(inert(f"{key}  {text}"), total=None)
        else:
            self.bar.update(task, description=inert(f"{key}  {text}"))

    def close(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.bar.tasks[-1].total)
        self.bar.stop()
