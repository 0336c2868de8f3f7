"""``atustc eval``: score saved features, or a trained run, on a protocol."""

from __future__ import annotations

from pathlib import Path

import click

from atustc.errors import AtustcError


@click.command("eval")
@click.option("--table", "table_path", required=True, type=click.Path(path_type=Path), help="Annotation table (.parquet): an index table or a split's table.parquet.")
@click.option("--features", "features_path", type=click.Path(path_type=Path), help="Saved features (.npz with relpath, heads, feat).")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), help="A run folder: embed the protocol's images with its model, store RUN/eval/<protocol>@<checkpoint>.json.")
@click.option("--protocol", "protocol_name", default=None, help="Protocol name (a file in protocols/) or path to a .toml file [default: with --run the split's default protocol, else atustc].")
@click.option("--root", type=click.Path(path_type=Path), help="Image root for --run (default: the table's manifest or split.json, else the run's).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True, help="Checkpoint used with --run.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the metrics as JSON (fractions, full precision).")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Also write the metrics as CSV (one row per scenario and aggregate).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars on stderr.")
def command(
    table_path: Path,
    features_path: Path | None,
    run_dir: Path | None,
    protocol_name: str | None,
    root: Path | None,
    checkpoint: str,
    json_path: Path | None,
    csv_path: Path | None,
    progress: bool,
) -> None:
    """Score features (--features) or a trained run (--run) on a protocol and print the table.

    One row per scenario (R1, R5, R10, R20, mAP, mINP in %, valid/all queries), then the
    protocol's aggregates (Any-Time for atustc).
    """
    from atustc.evaluate import evaluate, needed_rows, print_result
    from atustc.features import load_features
    from atustc.io import atomic_path, write_json_atomic
    from atustc.protocol import load_protocol
    from atustc.table import load_table

    if (features_path is None) == (run_dir is None):
        raise AtustcError("give exactly one of --features or --run")
    if root is not None and run_dir is None:
        raise AtustcError("--root only applies with --run")
    from atustc.provenance import checkpoint_record, provenance
    from atustc.runfolder import RunFolder

    if run_dir is not None and not run_dir.is_dir():
        raise AtustcError(f"{run_dir}: run folder not found")
    protocol = load_protocol(protocol_name or (_run_default_protocol(run_dir) if run_dir is not None else "atustc"))
    table = load_table(table_path)
    ckpt = None
    if features_path is not None:
        features = load_features(features_path)
    else:
        from atustc.engine import embed_run

        folder = RunFolder(run_dir)
        if folder.checkpoint_file(checkpoint).is_file():
            ckpt = checkpoint_record(folder, checkpoint)
        subset = table.iloc[needed_rows(protocol, table)]
        features = embed_run(run_dir, subset, _image_root(table_path, root), checkpoint=checkpoint, progress=progress)
    result = evaluate(protocol, table, features, progress=progress)
    print_result(result)
    record = {**result.to_dict(), "provenance": provenance(protocol, features, ckpt)}
    if run_dir is not None:
        write_json_atomic(RunFolder(run_dir).eval_file(protocol.name, checkpoint), record)
    if json_path is not None:
        write_json_atomic(json_path, record)
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            result.to_frame().to_csv(tmp, index=False, float_format="%.17g")


def _run_default_protocol(run_dir: Path) -> str:
    """The default protocol of the split the run was trained on (``atustc`` when unknown)."""
    from atustc.io import read_json
    from atustc.split.protocols import LEGACY_PROTOCOLS, SplitProtocols

    config = run_dir / "config.json"
    split_json = Path(read_json(config).get("split", "")) / "split.json" if config.is_file() else None
    if split_json is None or not split_json.is_file():
        return str(LEGACY_PROTOCOLS["default"])
    return SplitProtocols.from_info(read_json(split_json), str(split_json)).default


def _image_root(table_path: Path, root: Path | None) -> Path | None:
    """--root, else the table's manifest root, else its split's split.json root, else None (the run's)."""
    from atustc.io import read_json
    from atustc.table import dataset_root, manifest_path

    if root is not None:
        return root
    if manifest_path(table_path).is_file():
        return dataset_root(table_path)
    split_json = table_path.parent / "split.json"
    if split_json.is_file() and read_json(split_json).get("root"):
        return Path(read_json(split_json)["root"])
    return None
