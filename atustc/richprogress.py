"""The one progress helper: a rich bar on stderr as a context manager that yields a :class:`Bar`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class Bar:
    """Handle of a running bar: call it to advance; :meth:`set` moves it or changes its info text.

    A disabled bar (no rich ``Progress`` behind it) ignores every call.
    """

    def __init__(self, progress: Any = None, task: Any = None) -> None:
        self._progress, self._task = progress, task

    def __call__(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def set(self, completed: int | None = None, info: str | None = None) -> None:
        """Set the completed count and/or the info text shown right of the bar."""
        if self._progress is None:
            return
        fields: dict[str, Any] = {} if info is None else {"info": info}
        self._progress.update(self._task, completed=completed, **fields)


@contextlib.contextmanager
def progress_bar(
    description: str,
    total: int,
    enabled: bool = True,
    transient: bool = False,
    *,
    completed: int = 0,
    eta: bool = False,
) -> Iterator[Bar]:
    """Show a bar on stderr (unless ``enabled`` is False) and yield its :class:`Bar`.

    Args:
        description: the label left of the bar.
        total: the number of steps.
        enabled: False gives a no-op bar.
        transient: remove the bar from the screen when done.
        completed: steps already done (a resumed run).
        eta: show the estimated time remaining.
    """
    if not enabled:
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if eta:
        columns += [TextColumn("eta"), TimeRemainingColumn()]
    columns.append(TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=Console(stderr=True), transient=transient) as bar:
        task = bar.add_task(description, total=total, completed=completed, info="")
        yield Bar(bar, task)
