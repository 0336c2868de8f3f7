"""``atustc embed``: features of a table's images under a trained run."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("embed")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Run folder.",
)
@click.option(
    "--table",
    "table",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Annotation table (parquet).",
)
@click.option(
    "--split",
    "split_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Embed only this split's test rows (flags 2-10) of the table.",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Image root (default: the --split's, else the table manifest's, else the run's).",
)
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--batch-size", type=int, default=None, help="Images per batch (default: the run's).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Features file (.npz).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(
    run_dir: Path,
    table: Path,
    split_dir: Path | None,
    root: Path | None,
    checkpoint: str,
    batch_size: int | None,
    device: str,
    output: Path,
    quiet: bool,
) -> None:
    """Embed the images of TABLE with a trained run and write features (.npz: relpath, heads, feat)."""
    from atustc.engine.embed import embed_run
    from atustc.errors import AtustcError
    from atustc.features import save_features
    from atustc.runfolder import RunFolder
    from atustc.table import image_root, load_table

    if batch_size is not None and batch_size < 1:
        raise AtustcError(f"--batch-size must be >= 1, got {batch_size}")
    df = load_table(table)
    split_info = None
    if split_dir is not None:
        from atustc.split import load_split

        split = load_split(split_dir)
        df = df[df["relpath"].isin(set(split.test["relpath"]))].reset_index(drop=True)
        split_info = split.info
    run_root = RunFolder(run_dir).trained_root()
    root = image_root(root, table_path=table, split_info=split_info, run_root=run_root)
    feats = embed_run(
        run_dir, df, root, checkpoint=checkpoint, batch_size=batch_size, progress=not quiet, device=device
    )
    save_features(feats, output)
    click.echo(f"{output}: {feats.feat.shape[0]} images x {len(feats.heads)} heads x {feats.feat.shape[2]} dims")
