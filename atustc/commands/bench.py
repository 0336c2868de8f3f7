"""``atustc bench``: train and score several methods on the same data; print the leaderboard."""

from __future__ import annotations

from pathlib import Path

import click

from atustc.errors import AtustcError
from atustc.methods.contract import PRESETS


@click.command("bench")
@click.option("--methods", default="uniat,transreid", show_default=True, help="Comma-separated registered methods.")
@click.option(
    "--table",
    "table_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Annotation table (.parquet); without it the embedded synthetic dataset is built once and cached.",
)
@click.option(
    "--split",
    "split_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Split folder of --table (atustc split).",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Image root (default: the split's, else the table manifest's).",
)
@click.option("--preset", type=click.Choice(PRESETS), default="tiny", show_default=True)
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds; one run per method and seed.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("runs"),
    show_default=True,
    help="Runs folder: RUNS/<method>-<preset>-s<seed>/ and RUNS/bench.json.",
)
@click.option("--force", is_flag=True, help="Retrain runs that already finished.")
@click.option(
    "--pretrained",
    "pretrained",
    multiple=True,
    metavar="METHOD=FILE",
    help="Local pretrained weights for a method (repeatable).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Recipe/engine override for every method, e.g. epochs=2 (repeatable; see atustc train).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp", type=click.Choice(["off", "bf16", "fp16"]), default="off", show_default=True)
@click.option(
    "--synth-size",
    type=click.Choice(["test", "default", "large"]),
    default="default",
    show_default=True,
    help="Size of the synthetic dataset used without --table.",
)
@click.option(
    "--cache",
    "cache",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Cache folder of the synthetic dataset (default: $ATUSTC_CACHE or ~/.cache/atustc).",
)
@click.option(
    "--nproc",
    type=int,
    default=1,
    show_default=True,
    help="Processes per training (torchrun on this machine); see atustc/bench/README.md for several nodes.",
)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE first to register extra methods (repeatable; passed on to every training).",
)
@click.option(
    "--cross-domain",
    "cross_domain",
    default=None,
    metavar="NAME=SOURCE,...",
    help="Also score every run zero-shot on these datasets (SOURCE: a dataset root, a .parquet table or a split "
    "folder; a bare NAME: its synthetic miniature; 'synth': every miniature). Writes RUN/eval/xd-NAME@last.json.",
)
@click.option(
    "--train-on",
    "train_on",
    default=None,
    metavar="NAME=SOURCE,...",
    help="Table 1 mode: train every method on each of these datasets (a bare 'atustc': the embedded synthetic "
    "set) in OUT/NAME/ and test each model on every --cross-domain dataset; replaces --table/--split/--root.",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@click.option("--list", "list_only", is_flag=True, help="List the registered methods and exit.")
def command(
    methods: str,
    table_path: Path | None,
    split_dir: Path | None,
    root: Path | None,
    preset: str,
    seeds: str,
    out: Path,
    force: bool,
    pretrained: tuple[str, ...],
    sets: tuple[str, ...],
    device: str,
    amp: str,
    synth_size: str,
    cache: Path | None,
    nproc: int,
    plugins: tuple[str, ...],
    cross_domain: str | None,
    train_on: str | None,
    progress: bool,
    list_only: bool,
) -> int:
    """Train, embed and score each method × seed on the split's protocols (AT-USTC: atustc, atustc-mixed).

    With --cross-domain every run is also scored zero-shot on other datasets (the leaderboard's
    cross-domain block); with --train-on one model per training dataset is trained and tested on
    every --cross-domain dataset (the paper's Table 1, printed at the end).

    Runs that finished are reused unless --force; a failing method is recorded as failed and
    the others go on; an interrupted bench, started again, resumes its unfinished run. Ends by
    printing the leaderboard of every run in --out (exit status 1 if a run failed).
    """
    from rich.console import Console

    console = Console(stderr=True)
    from atustc.engine.config import import_plugins

    import_plugins(plugins)
    if list_only:
        _print_methods()
        return 0
    from atustc.bench.board_render import print_leaderboard
    from atustc.bench.harness import ensure_synthetic, run_bench, user_data
    from atustc.bench.leaderboard import load_leaderboard
    from atustc.engine.config import parse_set_options

    method_list = _split_list(methods, "--methods")
    seed_list = [_parse_seed(s) for s in _split_list(seeds, "--seeds")]
    weights = _parse_pretrained(pretrained)
    from atustc.bench.harness import check_overrides
    from atustc.methods import get_method
    from atustc.methods.contract import check_preset

    overrides = parse_set_options(sets)
    check_overrides([get_method(m) for m in method_list], check_preset(preset), overrides)  # before any data or run
    from atustc.bench.crossdomain import parse_domains, prepare_targets

    xd = parse_domains(cross_domain, "--cross-domain") if cross_domain is not None else []
    train = parse_domains(train_on, "--train-on") if train_on is not None else None
    if train is not None and (table_path is not None or split_dir is not None or root is not None):
        raise AtustcError("--train-on replaces --table, --split and --root (give NAME=TABLE_OR_SPLIT_OR_ROOT)")
    if train is not None and not xd:
        raise AtustcError("--train-on needs --cross-domain: the datasets every model is tested on")
    kwargs = dict(
        preset=preset, seeds=seed_list, force=force, pretrained=weights, overrides=overrides, device=device,
        amp=amp, progress=progress, console=console, nproc=nproc, plugins=plugins,
    )  # fmt: skip
    if train is not None:
        from atustc.bench.data import dataset_data
        from atustc.bench.leaderboard import collect_runs
        from atustc.bench.table1 import render_table1, run_table1, table1_frame

        given = [
            (d.name, dataset_data(d.name, d.source, out / "datasets", option="--train-on", cache=cache,
                                  synth_size=synth_size, progress=progress))
            for d in train
        ]  # fmt: skip
        targets = prepare_targets(xd, out / "datasets", cache=cache, synth_size=synth_size, progress=progress)
        outcomes = run_table1(method_list, given, targets, out, **kwargs)
        print_leaderboard(load_leaderboard(out))
        click.echo(render_table1(table1_frame(collect_runs(out)), "md"))
        return _exit_status(outcomes, console)
    if table_path is None:
        if split_dir is not None or root is not None:
            raise AtustcError("--split and --root need --table (without --table the synthetic dataset is used)")
        from atustc.synth import SynthConfig

        data = ensure_synthetic(SynthConfig.named(synth_size), cache, progress=progress)
    else:
        if split_dir is None:
            raise AtustcError(f"--table {table_path} needs --split (make one with `atustc split {table_path} -o DIR`)")
        data = user_data(table_path, split_dir, root)
    targets = prepare_targets(xd, out / "datasets", cache=cache, synth_size=synth_size, progress=progress)
    outcomes = run_bench(method_list, data=data, out=out, cross_domain=targets, **kwargs)
    print_leaderboard(load_leaderboard(out))
    return _exit_status(outcomes, console)


def _exit_status(outcomes: list, console) -> int:  # noqa: ANN001
    failed = [o for o in outcomes if o.state == "failed"]
    if failed:
        console.print(f"[red]{len(failed)} of {len(outcomes)} run(s) failed; see their status.json[/red]")
        return 1
    return 0


def _split_list(text: str, option: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise AtustcError(f"{option}: empty list")
    return items


def _parse_seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise AtustcError(f"--seeds: {text!r} is not an integer") from None
    if seed < 0:
        raise AtustcError(f"--seeds: seeds must be >= 0, got {seed}")
    return seed


def _parse_pretrained(items: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise AtustcError(f"--pretrained {item!r}: expected METHOD=FILE")
        if not Path(path).is_file():
            raise AtustcError(f"--pretrained {item!r}: file {path} not found")
        out[name] = Path(path)
    return out


def _print_methods() -> None:
    from rich.console import Console
    from rich.table import Table

    from atustc.bench.methods_info import describe_methods
    from atustc.methods import get_method
    from atustc.methods.describe import format_size, model_size

    table = Table(
        title="Registered methods. params (tiny): all, 8-person label space; params (paper): without the "
        "label-sized layers (classifiers, centres, SIE), whose cost per label follows; embedding: H x D at paper"
    )
    cols = ("method", "family", "heads", "params (tiny)", "params (paper)", "+ per label (paper)", "embedding")
    for col in (*cols, "recipe (tiny)", "recipe (paper)"):
        table.add_column(col, justify="right" if col.startswith(("params", "+", "embedding")) else "left")
    for row in describe_methods():
        params = "-" if row["params_tiny"] is None else f"{row['params_tiny'] / 1e6:.2f}M"
        try:
            paper = format_size(model_size(get_method(row["name"]), "paper"))
        except Exception as exc:  # a broken method is listed, not fatal
            paper = (f"failed: {type(exc).__name__}: {exc}", "", "")
        table.add_row(row["name"], row["family"], row["heads"], params, *paper, row["recipe_tiny"], row["recipe_paper"])
    Console(width=max(Console().width, 290)).print(table)
