"""``atustc eval``: score saved features, or a trained run, on a protocol."""

from __future__ import annotations

from pathlib import Path

import click

from atustc.commands.options import (
    checkpoint_option,
    features_option,
    progress_option,
    root_option,
    run_option,
)
from atustc.errors import AtustcError


@click.command("eval")
@click.option(
    "--table",
    "table_paths",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="Annotation table (.parquet): an index table or a split's table.parquet. Repeat it to score "
    "several tables of one dataset (e.g. RegDB's trials, one table each) and average them (with --features).",
)
@features_option()
@run_option("A run folder: embed the protocol's images with its model, store RUN/eval/<protocol>@<checkpoint>.json.")
@click.option(
    "--protocol",
    "protocol_name",
    default=None,
    help="Protocol name (a file in protocols/) or path to a .toml file [default: with --run the split's default protocol, else atustc].",
)
@root_option("Image root for --run (default: the table's split.json or manifest root, else the run's).")
@checkpoint_option()
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    help="Also write the metrics as JSON (fractions, full precision).",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path),
    help="Also write the metrics as CSV (one row per scenario and aggregate).",
)
@click.option(
    "--per-query",
    "per_query_path",
    type=click.Path(path_type=Path),
    help="Also write one row per query (.parquet): scenario, run, query relpath, AP, rank of the first positive after junk removal, and the top-k gallery relpaths marked pos/neg/junk.",
)
@click.option(
    "--top-k",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Length of the top lists in --per-query (junk is listed in place but does not take a rank).",
)
@click.option(
    "--rerank",
    "rerank_text",
    default=None,
    metavar="k1=20,k2=6,lambda=0.3",
    help="k-reciprocal re-ranking (Zhong et al., CVPR 2017) before ranking; any subset of the keys, or 'default'. Convention of the authors' code: squared Euclidean distance on L2-normalised features (raw ones under a euclidean protocol) over query+gallery of each ranked block, each row divided by its maximum; final = (1-lambda)*Jaccard + lambda*that distance. Memory stays bounded (sparse).",
)
@click.option(
    "--galleries",
    "galleries_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Galleries of the sampled scenarios instead of seeded draws: an eval .json with recorded trials "
    "(re-score on the same galleries) or SYSU-MM01's official exp/rand_perm_cam.mat.",
)
@progress_option()
def command(
    table_paths: tuple[Path, ...],
    features_path: Path | None,
    run_dir: Path | None,
    protocol_name: str | None,
    root: Path | None,
    checkpoint: str,
    json_path: Path | None,
    csv_path: Path | None,
    per_query_path: Path | None,
    top_k: int,
    rerank_text: str | None,
    galleries_path: Path | None,
    progress: bool,
) -> None:
    """Score features (--features) or a trained run (--run) on a protocol and print the table.

    One row per scenario (R1, R5, R10, R20, mAP, mINP in %, valid/all queries), then the
    protocol's aggregates (Any-Time for atustc). --run stores RUN/eval/<protocol>@<checkpoint>.json
    with its provenance and the per-query results beside it (<protocol>@<checkpoint>.per_query.parquet,
    what `leaderboard --compare` resamples). With --rerank the JSON records the parameters and
    --run stores <protocol>@<checkpoint>.rerank.json (the plain score is kept). A protocol that
    samples galleries records every drawn gallery (relpaths per trial) in the JSON ("trials").
    """
    from atustc.evaluate import evaluate, needed_rows, print_result
    from atustc.features import load_features
    from atustc.io import atomic_path, write_json_atomic
    from atustc.protocol import load_protocol
    from atustc.provenance import checkpoint_record, provenance
    from atustc.querycounts import add_counts, query_counts
    from atustc.runfolder import RunFolder
    from atustc.table import image_root, load_table

    if (features_path is None) == (run_dir is None):
        raise AtustcError("give exactly one of --features or --run")
    if len(table_paths) > 1:
        if run_dir is not None or per_query_path is not None or galleries_path is not None:
            raise AtustcError("several --table: score --features (without --run, --per-query or --galleries)")
        return _eval_tables(table_paths, features_path, protocol_name, rerank_text, json_path, csv_path, progress)
    table_path = table_paths[0]
    if root is not None and run_dir is None:
        raise AtustcError("--root only applies with --run")

    if run_dir is not None and not run_dir.is_dir():
        raise AtustcError(f"{run_dir}: run folder not found")
    hook, rerank, scoring = None, None, None
    if rerank_text is not None:
        from atustc.rerank import parse_rerank, rerank_hook

        rerank = parse_rerank(rerank_text)
        hook = rerank_hook(rerank)
    if per_query_path is not None and per_query_path.suffix != ".parquet":
        raise AtustcError(f"--per-query {per_query_path}: expected a .parquet file name")
    protocol = load_protocol(protocol_name or (_run_default_protocol(run_dir) if run_dir is not None else "atustc"))
    table = load_table(table_path)
    ckpt = None
    if features_path is not None:
        features = load_features(features_path)
    else:
        from atustc.engine import embed_run, run_scoring

        folder = RunFolder(run_dir)
        if folder.checkpoint_file(checkpoint).is_file():
            ckpt = checkpoint_record(folder, checkpoint)
        scoring = run_scoring(run_dir)  # set-dependent scoring of the method (SAAI's affinity inference)
        if scoring is not None:
            if rerank is not None:
                raise AtustcError(f"--rerank: run {run_dir} is already scored with {scoring.describe()}; drop --rerank")
            hook = scoring.hook()
        subset = table.iloc[needed_rows(protocol, table)]
        root = image_root(root, table_path=table_path, run_root=folder.trained_root())
        features = embed_run(run_dir, subset, root, checkpoint=checkpoint, progress=progress)
    # A run also keeps its per-query results (what `leaderboard --compare` resamples).
    keep_per_query = per_query_path is not None or (run_dir is not None and rerank is None)
    prov = provenance(protocol, features, ckpt)  # before evaluate, which normalises the features in place
    galleries = None
    if galleries_path is not None:
        from atustc.galleries import load_galleries

        galleries = load_galleries(galleries_path, protocol, table)
    result = evaluate(
        protocol,
        table,
        features,
        progress=progress,
        top_k=top_k if keep_per_query else None,
        scores=hook,
        in_place=True,
        galleries=galleries,
    )
    counts = query_counts(protocol, table)
    print_result(result, counts=counts)
    if per_query_path is not None:
        with atomic_path(per_query_path, suffix=".parquet") as tmp:
            result.per_query.to_parquet(tmp, index=False)
    record = {**add_counts(result.to_dict(), counts), "provenance": prov}
    if rerank is not None:
        record["rerank"] = rerank.describe()
    elif hook is not None:
        record["scoring"] = scoring.describe()
    if galleries_path is not None:
        record["galleries"] = str(galleries_path)
    if run_dir is not None:
        folder = RunFolder(run_dir)
        # A re-ranked score never replaces the run's plain one (which the leaderboard reads).
        if rerank is not None:
            write_json_atomic(folder.rerank_file(protocol.name, checkpoint), record)
        else:
            write_json_atomic(folder.eval_file(protocol.name, checkpoint), record)
            with atomic_path(folder.per_query_file(protocol.name, checkpoint)) as tmp:
                result.per_query.to_parquet(tmp, index=False)
    if json_path is not None:
        write_json_atomic(json_path, record)
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            result.to_frame().to_csv(tmp, index=False, float_format="%.17g")


def _eval_tables(
    table_paths: tuple[Path, ...],
    features_path: Path,
    protocol_name: str | None,
    rerank_text: str | None,
    json_path: Path | None,
    csv_path: Path | None,
    progress: bool,
) -> None:
    """Score one feature file on several tables of a protocol and print / write their mean."""
    from atustc.evaluate import average_results, evaluate, print_result
    from atustc.features import load_features
    from atustc.io import atomic_path, write_json_atomic
    from atustc.protocol import load_protocol
    from atustc.provenance import provenance
    from atustc.querycounts import add_counts, query_counts
    from atustc.table import load_table

    protocol = load_protocol(protocol_name or "atustc")
    features = load_features(features_path)
    hook = None
    if rerank_text is not None:
        from atustc.rerank import parse_rerank, rerank_hook

        hook = rerank_hook(parse_rerank(rerank_text))
    results, per_table = [], []
    for path in table_paths:
        table = load_table(path)
        result = evaluate(protocol, table, features, progress=progress, scores=hook)
        results.append(result)
        per_table.append({"table": str(path), **add_counts(result.to_dict(), query_counts(protocol, table))})
    mean = average_results(results, protocol)
    print_result(mean)
    click.echo(f"mean over {len(table_paths)} tables")
    record = {**mean.to_dict(), "tables": per_table, "provenance": provenance(protocol, features, None)}
    if rerank_text is not None:
        record["rerank"] = parse_rerank(rerank_text).describe()
    if json_path is not None:
        write_json_atomic(json_path, record)
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            mean.to_frame().to_csv(tmp, index=False, float_format="%.17g")


def _run_default_protocol(run_dir: Path) -> str:
    """The default protocol of the split the run was trained on (``atustc`` when unknown)."""
    from atustc.io import read_json
    from atustc.split.protocols import LEGACY_PROTOCOLS, SplitProtocols

    config = run_dir / "config.json"
    split_json = Path(read_json(config).get("split", "")) / "split.json" if config.is_file() else None
    if split_json is None or not split_json.is_file():
        return str(LEGACY_PROTOCOLS["default"])
    return SplitProtocols.from_info(read_json(split_json), str(split_json)).default
