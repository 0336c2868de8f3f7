"""``atustc show``: pictures of results (rank lists, CMC curves)."""

from __future__ import annotations

from pathlib import Path

import click

from atustc.commands.options import (
    checkpoint_option,
    features_option,
    progress_option,
    root_option,
    run_option,
    table_option,
)
from atustc.errors import AtustcError


@click.group("show")
def command() -> None:
    """Pictures of results: rank lists (ranks) and CMC curves (cmc)."""


@command.command("ranks")
@table_option()
@features_option()
@run_option("A run folder: embed the scenario's images with its model, as `atustc eval --run` does.")
@checkpoint_option()
@click.option("--protocol", "protocol_name", default="atustc", show_default=True, help="Protocol name or .toml path.")
@click.option("--scenario", required=True, help="Scenario of the protocol to draw, e.g. DT-LT.")
@root_option()
@click.option(
    "--sort",
    "sort",
    type=click.Choice(["best", "worst", "random"]),
    default="worst",
    show_default=True,
    help="Which queries: highest AP, lowest AP, or a seeded random draw.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of --sort random.")
@click.option(
    "-n",
    "--queries",
    "n_queries",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Number of queries (rows).",
)
@click.option(
    "--top-k", default=10, show_default=True, type=click.IntRange(min=1, max=50), help="Gallery entries per query."
)
@click.option(
    "--junk",
    type=click.Choice(["show", "hide"]),
    default="show",
    show_default=True,
    help="Junk entries in place (grey, not ranked) or hidden.",
)
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False), help="Output .png file."
)
@progress_option()
def ranks(
    table_path: Path,
    features_path: Path | None,
    run_dir: Path | None,
    checkpoint: str,
    protocol_name: str,
    scenario: str,
    root: Path | None,
    sort: str,
    seed: int,
    n_queries: int,
    top_k: int,
    junk: str,
    output: Path,
    progress: bool,
) -> None:
    """Draw rank lists: each query and its top-k gallery images (green positive, red negative, grey junk)."""
    import dataclasses

    from atustc.evaluate import evaluate, needed_rows
    from atustc.features import load_features
    from atustc.protocol import load_protocol
    from atustc.runfolder import RunFolder
    from atustc.show.cmc import save
    from atustc.show.ranks import pick_queries, plot_ranks, ranks_title
    from atustc.table import image_root, load_table

    if (features_path is None) == (run_dir is None):
        raise AtustcError("give exactly one of --features or --run")
    if output.suffix != ".png":
        raise AtustcError(f"-o {output}: expected a .png file name")
    protocol = load_protocol(protocol_name)
    names = [s.name for s in protocol.scenarios]
    if scenario not in names:
        raise AtustcError(f"--scenario: {protocol.name} has no scenario {scenario!r} (scenarios: {', '.join(names)})")
    protocol = dataclasses.replace(
        protocol, scenarios=tuple(s for s in protocol.scenarios if s.name == scenario), aggregates=()
    )
    table = load_table(table_path)
    if features_path is not None:
        features = load_features(features_path)
        root = image_root(root, table_path=table_path)
    else:
        from atustc.engine import embed_run

        if not run_dir.is_dir():
            raise AtustcError(f"{run_dir}: run folder not found")
        root = image_root(root, table_path=table_path, run_root=RunFolder(run_dir).trained_root())
        subset = table.iloc[needed_rows(protocol, table)]
        features = embed_run(run_dir, subset, root, checkpoint=checkpoint, progress=progress)
    per_query = evaluate(protocol, table, features, progress=progress, top_k=top_k).per_query
    chosen = pick_queries(per_query, sort, n_queries, seed)  # type: ignore[arg-type]
    title = ranks_title(scenario, sort, len(chosen), int(per_query["valid"].sum()), seed, top_k)  # type: ignore[arg-type]
    fig = plot_ranks(chosen, root, title=title, junk=junk, top_k=top_k)  # type: ignore[arg-type]
    save(fig, output.with_suffix(""), ("png",))
    click.echo(f"wrote {output} ({len(chosen)} queries, {title.split(': ', 1)[1]})")


@command.command("cmc")
@click.option(
    "--runs",
    "runs_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of run folders (as for `atustc leaderboard`).",
)
@click.option("--protocol", default="atustc", show_default=True, help="Which eval/<protocol>.json of the runs to plot.")
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="Output stem: writes STEM.png and STEM.svg."
)
def cmc(runs_dir: Path, protocol: str, output: Path) -> None:
    """Plot CMC curves (ranks 1-20) per scenario, one line per leaderboard row (mean over its runs)."""
    from atustc.bench.leaderboard import collect_runs
    from atustc.show.cmc import collect_curves, plot_cmc, save

    scenarios, curves = collect_curves(collect_runs(runs_dir), protocol)
    fig = plot_cmc(scenarios, curves, f"CMC, protocol {protocol} ({runs_dir})")
    stem = output.with_suffix("") if output.suffix in (".png", ".svg") else output
    for path in save(fig, stem, ("png", "svg")):
        click.echo(f"wrote {path}")
