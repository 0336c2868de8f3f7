"""``atustc index ROOT -o TABLE.parquet``: index a dataset tree into an annotation table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from atustc.errors import AtustcError


@click.command("index")
@click.argument("root", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The table to write (.parquet); the manifest goes beside it (<stem>.manifest.json).",
)
@click.option(
    "--format",
    "fmt",
    default="atustc",
    show_default=True,
    help="Dataset format: a registered dataset name (atustc, market1501, ...).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Any rejected file, or any count that differs from the published statistics, is an error "
    "(exit 2); nothing is written.",
)
@click.option("--verify-images", is_flag=True, help="Decode every image (in parallel); reject corrupt ones.")
@click.option("--workers", type=int, default=None, help="Decoding threads for --verify-images.")
@click.option(
    "--trial",
    type=int,
    default=None,
    help="The released split to read, for datasets that release several (regdb: 1-10, default 1); "
    "the manifest records it.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only errors.")
def command(
    root: Path,
    output: Path,
    fmt: str,
    strict: bool,
    verify_images: bool,
    workers: int | None,
    trial: int | None,
    quiet: bool,
) -> None:
    """Index ROOT (one pass over the tree) into an annotation table and a manifest.

    Files that cannot be used (unparseable name, unknown flag, camera out of 1-16, non-image
    file, duplicate name, and with --verify-images corrupt images) are listed with their reason
    in the manifest and summarised here. The counts of every split are checked against the
    release's published statistics; differences are recorded in the manifest
    (``published_check``) and printed; a tree drawn by `atustc synth` is recorded as synthetic
    (``synthetic`` in the manifest, from its marker file) and its differences are only counted.
    """
    from atustc.datasets import index_dataset, write_index

    if output.suffix != ".parquet":
        raise AtustcError(f"{output}: the table file must end in .parquet")
    result = index_dataset(root, fmt, verify_images, workers=workers, progress=not quiet, trial=trial)
    rejected = result.manifest["rejected"]
    if strict and rejected:
        first = rejected[0]
        raise AtustcError(
            f"{root}: {len(rejected)} file(s) rejected under --strict; first: {first['path']}: {first['reason']}"
        )
    diffs = result.manifest["published_check"]
    if strict and diffs and "synthetic" not in result.manifest:  # a synthetic tree is not the release
        raise AtustcError(
            f"{root}: {len(diffs)} count(s) differ from the published {fmt} statistics under --strict; "
            f"first: {_diff_text(diffs[0])}"
        )
    write_index(result, output)
    if not quiet:
        _print_summary(result.manifest, output)


def _print_summary(manifest: dict[str, Any], output: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from atustc.table import manifest_path

    c = manifest["counts"]
    console = Console()
    console.print(
        f"[bold]{output}[/]: {c['images']:,} images ({c['rgb']:,} RGB, {c['ir']:,} IR) of "
        f"{c['identities']} identities; {', '.join(f'{k} {v:,}' for k, v in c['by_split'].items())}",
        highlight=False,
        soft_wrap=True,
    )
    synthetic = manifest.get("synthetic")
    if synthetic is not None and manifest["published_check"]:
        console.print(
            f"synthetic tree ({synthetic.get('generator', 'atustc synth')}, seed {synthetic.get('seed')}): "
            f"{len(manifest['published_check'])} count(s) differ from the published {manifest['format']} "
            f"statistics, as expected (listed in {manifest_path(output).name})",
            highlight=False,
        )
    else:
        for d in manifest["published_check"]:
            console.print(f"[yellow]differs from the published statistics:[/] {_diff_text(d)}", highlight=False)
    rejected = manifest["rejected"]
    if not rejected:
        return
    table = Table(title=f"{len(rejected)} rejected file(s) (all listed in {manifest_path(output).name})")
    table.add_column("reason")
    table.add_column("files", justify="right")
    table.add_column("example")
    for code, n in c["rejected_by_reason"].items():
        ex = next(r for r in rejected if r["code"] == code)
        table.add_row(code, f"{n:,}", f"{ex['path']}: {ex['reason']}")
    console.print(table)


def _diff_text(d: dict[str, Any]) -> str:
    return f"{d['split']} {d['count']}: indexed {d['indexed']:,}, published {d['published']:,} ({d['difference']:+,})"
