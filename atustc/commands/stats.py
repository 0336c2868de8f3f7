"""``atustc stats``: the paper's Fig. 2 statistics, CSVs and figures for indexed tables."""

from __future__ import annotations

import click

from atustc.stats.report import SUMMARY_FORMATS


@click.command("stats")
@click.argument("tables", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Folder for the CSVs, stats.json and the Fig. 2 panels (PNG + SVG). Nothing is written without it.",
)
@click.option(
    "--format",
    "fmt",
    default=None,
    metavar="|".join(SUMMARY_FORMATS),
    help="Print the summary to stdout in this format instead of the on-screen table.",
)
@click.option("--no-published", is_flag=True, help="Leave the published comparison datasets out of the panels.")
@click.option("--no-plots", is_flag=True, help="Write the CSVs and stats.json only.")
@click.option("--combined", is_flag=True, help="Also draw the panels in one figure (fig2.png, fig2.svg).")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="NAME",
    help="Name a table in the outputs instead of its `dataset` value; give once per TABLE, in order.",
)
def command(
    tables: tuple[str, ...],
    out_dir: str | None,
    fmt: str | None,
    no_published: bool,
    no_plots: bool,
    combined: bool,
    labels: tuple[str, ...],
) -> None:
    """Per-table and per-split statistics of annotation TABLES (parquet), as in the paper's Fig. 2.

    For every table and every split (train, val, test, query, gallery and the AT-USTC
    ST/LT x RGB/IR query/gallery pools): identities, images, outfits, RGB and IR cameras,
    captures (distinct date x camera) and dates per identity, and which of the six scenarios
    DT-ST ... AD-LT (protocols/atustc.toml) have a valid query/positive pair; for a table of a
    registered dataset, also the valid queries of its default protocol on its query/gallery. A table of a published dataset (by its
    `dataset` column: Market1501, CUHK03, MSMT17, RegDB, SYSU-MM01, LLCM, PRCC, LTCC,
    DeepChange, AT-USTC) is drawn beside that dataset's published figures, marked *; a table
    whose images `atustc synth` drew (its index manifest says so) is labelled "(synthetic)".
    """
    from rich.console import Console

    from atustc.errors import AtustcError
    from atustc.stats.report import build_report, format_summary, summary_tables, write_report
    from atustc.table import load_table

    if fmt is not None and fmt not in SUMMARY_FORMATS:
        raise AtustcError(f"--format: unknown format {fmt!r}; choose one of {', '.join(SUMMARY_FORMATS)}")
    if labels and len(labels) != len(tables):
        raise AtustcError(f"--label: got {len(labels)} name(s) for {len(tables)} table(s); give one per table")
    err = Console(stderr=True)
    loaded = {path: load_table(path) for path in tables}
    synthetic = [path for path in tables if _is_synthetic(path)]
    report = build_report(loaded, published=not no_published, labels=list(labels) or None, synthetic=synthetic)
    if out_dir is not None:
        written = write_report(report, out_dir, plots=not no_plots, combined=combined)
        err.print(f"wrote {len(written)} files to {out_dir}", highlight=False)
    if fmt is None:
        out = Console()
        out.width = max(out.width, 100)  # the summary needs ~90 columns; a pipe would get 80
        for table in summary_tables(report):
            out.print(table)
    else:
        click.echo(format_summary(report, fmt), nl=False)  # type: ignore[arg-type]


def _is_synthetic(table_path: str) -> bool:
    """Whether the table's index manifest (beside it) says ``atustc synth`` drew its images."""
    from atustc.table import read_manifest

    manifest = read_manifest(table_path)  # a malformed manifest is an error that names it
    return manifest is not None and "synthetic" in manifest
