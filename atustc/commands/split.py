"""``atustc split TABLE -o DIR``: train/val/test tables, query/gallery lists and the protocols, for any dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atustc.errors import AtustcError

if TYPE_CHECKING:
    from atustc.split import Split


@click.command("split")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Split folder to write (tables, lists/<pool>.txt, split.json).",
)
@click.option(
    "--strategy",
    type=click.Choice(["official", "resplit"]),
    default="official",
    show_default=True,
    help="official: the release's split (AT-USTC: its flags); resplit: a fresh seeded 1:1 identity "
    "split (datasets that allow it).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the resplit, the validation identities and the validation protocol's query/gallery.",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Share of the train identities used for validation (default: the dataset's, 0.2).",
)
@click.option(
    "--dataset",
    default=None,
    metavar="NAME",
    help="Split by the rules and protocols of this registered dataset (default: the table's `dataset`).",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Image root to record (default: the table manifest's root).",
)
@click.option(
    "--describe",
    is_flag=True,
    help="Audit the split (shared identities, outfits, images, dates, modalities); SOURCE may then be a split folder.",
)
@click.option(
    "--train-set",
    type=click.Choice(["train", "train+val"]),
    default="train",
    show_default=True,
    help="Where the release has a validation set (MSMT17's list_val.txt): train keeps it for validation; "
    "train+val trains on both (the published train set) and leaves no validation. Recorded in split.json.",
)
@click.option("--overwrite", is_flag=True, help="Replace the -o folder if it exists and is not empty.")
def command(
    source: Path,
    output: Path | None,
    strategy: str,
    seed: int,
    val_fraction: float | None,
    dataset: str | None,
    root: Path | None,
    describe: bool,
    train_set: str,
    overwrite: bool,
) -> None:
    """Split SOURCE (a table .parquet, or with --describe a split folder) and print its statistics.

    The table's dataset decides how: AT-USTC reads its flags; a dataset without a validation
    split gets a seeded share of its train identities as validation, with query/gallery roles
    for the validation protocol. split.json records the dataset and its protocols. Every
    scenario of every scored protocol must have a query with a valid positive.

    With --strategy resplit the new split lives in the split's tables; image file names keep
    the flags they were published with (the table, not the name, is the source of labels).
    The new split is built beside -o and swapped in whole, so a failure keeps the old one.
    """
    from atustc.io import atomic_dir, write_json_atomic
    from atustc.split import describe_split, load_split, make_split, write_split

    if source.is_dir():
        if not describe:
            raise AtustcError(f"{source}: is a folder; pass a table .parquet (or --describe to audit a split folder)")
        split = load_split(source)
        record = describe_split(split)
        if output is not None:  # an audit added to a folder (often the split folder itself)
            write_json_atomic(output / "describe.json", record)
    else:
        from atustc.table import image_root, load_table

        if output is None and not describe:
            raise AtustcError("missing -o/--output: the split folder to write")
        if output is not None and output.is_dir() and any(output.iterdir()) and not overwrite:
            raise AtustcError(f"{output}: folder exists and is not empty; pass --overwrite to replace it")
        table = load_table(source)
        try:
            root = image_root(root, table_path=source)  # what split.json records
        except AtustcError:
            root = None  # no root known yet: later commands ask for --root
        split = make_split(
            table,
            strategy,
            seed,
            root=root,
            val_fraction=val_fraction,  # type: ignore[arg-type]
            dataset=dataset,
            source=str(source),
            train_set=train_set,  # type: ignore[arg-type]
        )
        record = describe_split(split) if describe else None
        if output is not None:
            with atomic_dir(output) as tmp:
                write_split(split, tmp)
                if record is not None:
                    write_json_atomic(tmp / "describe.json", record)
    _print_summary(split)
    if record is not None:
        _print_audit(record)
    if output is not None:
        click.echo(f"wrote {output} ({split.info['strategy']}, seed {split.info['seed']})")


def _print_summary(split: Split) -> None:
    from rich.console import Console
    from rich.table import Table

    from atustc.split import summary_frame

    frame = summary_frame(split)
    dataset = split.info.get("dataset", "atustc")
    t = Table(title=f"split of {dataset}: {split.info['strategy']} (seed {split.info['seed']})")
    for col in ("set", "ids", "outfits/id", "RGB cams/id", "IR cams/id", "images", "RGB", "IR"):
        t.add_column(col, justify="left" if col == "set" else "right")
    for r in frame.itertuples(index=False):
        t.add_row(
            r.set,
            str(r.identities),
            f"{r.outfits_per_id:.2f}",
            f"{r.rgb_cams_per_id:.2f}",
            f"{r.ir_cams_per_id:.2f}",
            f"{r.images:,}",
            f"{r.rgb_images:,}",
            f"{r.ir_images:,}",
        )
    s = Table(title=f"protocol {split.protocols.default}: scenarios (queries with >= 1 valid positive)")
    for col in ("scenario", "queries", "valid", "gallery", "val queries", "val valid"):
        s.add_column(col, justify="left" if col == "scenario" else "right")
    summary = split.info["summary"]
    for name, st in summary["scenarios"].items():
        v = summary["val_scenarios"].get(name, {"queries": 0, "valid": 0})
        s.add_row(
            name, f"{st['queries']:,}", f"{st['valid']:,}", f"{st['gallery']:,}", f"{v['queries']:,}", f"{v['valid']:,}"
        )
    console = Console()
    console.print(t)
    console.print(s)


def _print_audit(record: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"audit: {record['kind']}", box=box.SIMPLE_HEAD)
    for col in ("pair", "relation", "ids", "outfits", "images", "dates", "modalities"):
        t.add_column(col, no_wrap=True)
    for pair, p in record["pairs"].items():
        t.add_row(
            pair,
            p["identity_relation"],
            str(p["shared_identities"]),
            str(p["shared_outfits"]),
            str(p["shared_images"]),
            str(p["shared_dates"]),
            "|".join({"ir+rgb": "both"}.get("+".join(m), "+".join(m)) or "-" for m in p["modalities"]),
        )
    t.caption = "relation of the identities; ids, outfits, images, dates: how many the two sets share"
    Console().print(t)
