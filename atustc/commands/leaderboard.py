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
@click.option(
    "--compare",
    "compare",
    default=None,
    metavar="A,B",
    help="Also compare two rows (method, method/preset or method/preset/hash): A - B per scenario with paired "
    "bootstrap 95% intervals over queries and over runs (needs RUN/eval/atustc.per_query.parquet). "
    "With --format csv only the comparison is written.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the --compare bootstrap.")
@click.option(
    "--layout",
    type=click.Choice(["table4", "table1", "table2"]),
    default="table4",
    show_default=True,
    help="table4: every method, every scenario (the paper's Table 4), plus the cross-domain block when runs have "
    "one; table1: the train-on-X / test-on-Y matrix of atustc bench --train-on (R1 and mAP, AVG column; markdown "
    "when printed); table2: MS-ReID and the MoE methods with Experts, Params x and Time x over MS-ReID and the "
    "headline R1/mAP (the paper's Table 2).",
)
def command(runs_dir: Path, fmt: str | None, output: Path | None, compare: str | None, seed: int, layout: str) -> None:
    """Rebuild the leaderboard (Table 4, Table 1 or Table 2 layout) from run folders; never edits a run.

    Several seeds or splits of a method give mean ± std per cell. The CSV is tidy, one row per
    method × preset × data hash, with fractions at full precision (columns documented in
    atustc.bench.leaderboard; --layout table1: in atustc.bench.table1; table2: atustc.bench.table2).
    """
    from atustc.bench.board_render import print_leaderboard, render, write_leaderboard
    from atustc.bench.leaderboard import load_leaderboard

    if layout == "table1":
        _table1(runs_dir, fmt, output, compare)
        return
    board = load_leaderboard(runs_dir)
    if layout == "table2":
        _table2(board, fmt, output, compare)
    elif compare is not None:
        _compare(board, runs_dir, compare, fmt, output, seed)
    elif output is not None:
        fmt = fmt or _format_from_suffix(output)
        write_leaderboard(board, fmt, output)  # type: ignore[arg-type]
        click.echo(f"wrote {output} ({fmt}, {len(board.frame)} rows)")
    elif fmt is None:
        print_leaderboard(board)
    else:
        click.echo(render(board, fmt), nl=False)  # type: ignore[arg-type]


def _table2(board, fmt: str | None, output: Path | None, compare: str | None) -> None:  # noqa: ANN001
    """The Table 2 layout (atustc.bench.table2): printed, or exported as csv, md or LaTeX."""
    from atustc.bench.table2 import print_table2, render_table2
    from atustc.errors import AtustcError
    from atustc.io import write_text_atomic

    if compare is not None:
        raise AtustcError("--compare works with --layout table4, not table2")
    if output is not None:
        fmt = fmt or _format_from_suffix(output)
        write_text_atomic(output, render_table2(board, fmt))  # type: ignore[arg-type]
        click.echo(f"wrote {output} ({fmt}, Table 2 layout)")
    elif fmt is None:
        print_table2(board)
    else:
        click.echo(render_table2(board, fmt), nl=False)  # type: ignore[arg-type]


def _compare(board, runs_dir: Path, spec: str, fmt: str | None, output: Path | None, seed: int) -> None:  # noqa: ANN001
    """The leaderboard followed by the comparison table (csv: the comparison alone)."""
    from atustc.bench.board_render import print_leaderboard, render
    from atustc.bench.leaderboard import collect_runs
    from atustc.bench.significance import comparison_frame, print_comparison, render_comparison
    from atustc.errors import AtustcError
    from atustc.io import write_text_atomic

    names = [t.strip() for t in spec.split(",")]
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise AtustcError(f"--compare: expected two different rows as A,B, got {spec!r}")
    frame = comparison_frame(collect_runs(runs_dir), names[0], names[1], seed=seed)
    if output is not None:
        fmt = fmt or _format_from_suffix(output)
    if fmt is None:
        print_leaderboard(board)
        print_comparison(frame)
        return
    text = render_comparison(frame, fmt) if fmt == "csv" else render(board, fmt) + "\n" + render_comparison(frame, fmt)  # type: ignore[arg-type]
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text_atomic(output, text)
        click.echo(f"wrote {output} ({fmt}, comparison of {names[0]} and {names[1]})")


def _table1(runs_dir: Path, fmt: str | None, output: Path | None, compare: str | None) -> None:
    """The Table 1 matrix of the runs, printed (markdown by default) or written to ``output``."""
    from atustc.bench.leaderboard import collect_runs
    from atustc.bench.table1 import render_table1, table1_frame
    from atustc.errors import AtustcError
    from atustc.io import write_text_atomic

    if compare is not None:
        raise AtustcError("--compare works with --layout table4 only")
    if output is not None:
        fmt = fmt or _format_from_suffix(output)
    text = render_table1(table1_frame(collect_runs(runs_dir)), fmt or "md")
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text_atomic(output, text)
        click.echo(f"wrote {output} ({fmt}, Table 1)")


def _format_from_suffix(path: Path) -> str:
    from atustc.errors import AtustcError

    suffixes = {".csv": "csv", ".md": "md", ".tex": "latex"}
    if path.suffix not in suffixes:
        raise AtustcError(f"-o {path}: cannot tell the format from the suffix; pass --format csv|md|latex")
    return suffixes[path.suffix]
