"""``atustc leaderboard``: rebuild the leaderboard from run folders."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("leaderboard")
@click.option(
    "--runs",
    "runs_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("runs"),
    show_default=True,
    help="Folder holding run folders (each with status.json).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "md", "latex"]),
    default=None,
    help="Export format; without it (and without -o) a rich table is printed.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the export to this file (atomically) instead of stdout.",
)
def command(runs_dir: Path, fmt: str | None, output: Path | None) -> None:
    """Rebuild the leaderboard (Table 4 layout) from run folders; never edits a run.

    Several seeds or splits of a method give mean ± std per cell. The CSV is tidy, one row per
    method × preset × data hash, with fractions at full precision (columns documented in
    atustc.bench.leaderboard).
    """
    from atustc.bench.leaderboard import load_leaderboard, print_leaderboard, render, write_leaderboard

    board = load_leaderboard(runs_dir)
    if output is not None:
        fmt = fmt or _format_from_suffix(output)
        write_leaderboard(board, fmt, output)  # type: ignore[arg-type]
        click.echo(f"wrote {output} ({fmt}, {len(board.frame)} rows)")
    elif fmt is None:
        print_leaderboard(board)
    else:
        click.echo(render(board, fmt), nl=False)  # type: ignore[arg-type]


def _format_from_suffix(path: Path) -> str:
    from atustc.errors import AtustcError

    suffixes = {".csv": "csv", ".md": "md", ".tex": "latex"}
    if path.suffix not in suffixes:
        raise AtustcError(f"-o {path}: cannot tell the format from the suffix; pass --format csv|md|latex")
    return suffixes[path.suffix]
