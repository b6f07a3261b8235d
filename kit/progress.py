"""How far an operator's long job has got (`rehab keys rotate`, `names reindex`, `backup`, `restore`), on stderr.

On a terminal, a rich progress bar; anywhere else (a pipe, a log file, cron), a plain line at most every `every`
seconds and one at the end, so that a log shows the job moving without a line per row. Only the job's label,
counts and the name of a step (a process, a file kind) are shown: never a value read from a record, so nothing
personal reaches a scroll-back or a log. stdout stays for the job's result.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar


class Progress:
    """`with Progress("keys rotate", unit="data keys", total=n) as progress: … progress.advance(k) …`"""

    def __init__(self, label: str, *, unit: str, total: int | None = None, stream: TextIO | None = None,
                 every: float = 5.0, enabled: bool = True) -> None:
        self.label, self.unit, self.total, self.every, self.enabled = label, unit, total, every, enabled
        self.done = 0
        self.step: str | None = None
        self._stream = stream if stream is not None else sys.stderr
        self._bar: Bar | None = None
        self._task = None
        self._started = self._last_line = 0.0

    @classmethod
    def silent(cls) -> Progress:
        """One that shows nothing: the default of the functions that take one, for callers that are not a console."""
        return cls("", unit="", enabled=False)

    def __enter__(self) -> Self:
        self._started = self._last_line = time.monotonic()
        if not self.enabled:
            return self
        console = Console(file=self._stream)
        if console.is_terminal:
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn(self.unit), TimeElapsedColumn(), console=console)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.stop()
            return
        seconds = time.monotonic() - self._started
        self._line(f"{self._counts()}, {'done' if kind is None else 'stopped'} after {seconds:.1f} s")

    def set_total(self, total: int | None) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def doing(self, step: str) -> None:
        """Name what the job does now (a process's database, "the archive"): never a value from a record."""
        self.step = step
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self.label}: {step}")

    def advance(self, count: int = 1) -> None:
        """`count` more done."""
        self.done += count
        if self.total is not None and self.done > self.total:
            self.total = self.done  # more arrived while the job ran (a case opened meanwhile)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total)
        elif time.monotonic() - self._last_line >= self.every:
            self._line(self._counts() + (f", {self.step}" if self.step else ""))

    def _counts(self) -> str:
        of = f" of {self.total}" if self.total is not None else ""
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        return f"{self.done}{of} {self.unit}{share}"

    def _line(self, text: str) -> None:
        self._last_line = time.monotonic()
        print(f"{self.label}: {text}", file=self._stream, flush=True)
