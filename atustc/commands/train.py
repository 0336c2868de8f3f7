"""``atustc train``: train a registered method from a table and a split into a run folder."""

from __future__ import annotations

import os
from pathlib import Path

import click

from atustc.methods.contract import PRESETS


@click.command("train")
@click.option("--method", required=True, help="Registered method name (e.g. uniat).")
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
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Split folder from `atustc split`.",
)
@click.option(
    "--preset",
    type=click.Choice(PRESETS),
    default="tiny",
    show_default=True,
    help="Recipe preset.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Run folder to write.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of init, sampling and augmentation.")
@click.option(
    "--pretrained",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Local pretrained weights file.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from checkpoints/last.pt.")
@click.option("--force", is_flag=True, help="Delete an existing run in --out and start over.")
@click.option(
    "--amp",
    type=click.Choice(["off", "bf16", "fp16"]),
    default="off",
    show_default=True,
    help="Mixed precision.",
)
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the training step.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Image root (default: the split's, else the table manifest's).",
)
@click.option(
    "--nproc",
    type=int,
    default=1,
    show_default=True,
    help="Processes for distributed training (runs torchrun).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Recipe/engine override, e.g. epochs=2 (repeatable).",
)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE first to register extra methods.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(
    method: str,
    table: Path,
    split_dir: Path,
    preset: str,
    out: Path,
    seed: int,
    pretrained: Path | None,
    resume: bool,
    force: bool,
    amp: str,
    compile_: bool,
    device: str,
    root: Path | None,
    nproc: int,
    sets: tuple[str, ...],
    plugins: tuple[str, ...],
    quiet: bool,
) -> None:
    """Train METHOD on the split's train table; validate on its val protocol; write the run folder.

    \b
    RUN/config.json, manifest.json, status.json, train.log, metrics.jsonl,
    RUN/checkpoints/last.pt (resume point) and best.pt (best on validation).
    """
    from atustc.cli import command_argv
    from atustc.engine.config import parse_set_options
    from atustc.engine.request import TrainRequest
    from atustc.errors import AtustcError

    request = TrainRequest.make(
        method, table, split_dir, preset, out, seed=seed, resume=resume, force=force, root=root,
        pretrained=pretrained, overrides=parse_set_options(sets), device=device, amp=amp, compile=compile_,
        plugins=plugins, progress=not quiet,
    )  # fmt: skip
    if nproc < 1:
        raise AtustcError(f"--nproc must be >= 1, got {nproc}")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        from atustc.engine.distributed import launch, without_option
        from atustc.engine.setup import prepare
        from atustc.runfolder import RunFolder

        with RunFolder(out).lock("train"):  # held here for the workers (ATUSTC_LAUNCHED)
            prepare(request, world=nproc)  # fail fast, before spawning
            launch(nproc, without_option(command_argv(), "--nproc"))  # the workers get the user's own arguments
    else:
        from atustc.engine.train import run_training

        run_training(request)
    if int(os.environ.get("RANK", 0)) == 0 and not os.environ.get("ATUSTC_LAUNCHED"):
        _summary(out)


def _summary(out: Path) -> None:
    from atustc.io import read_json

    status = read_json(out / "status.json")
    best = status.get("best") or {}
    value = best.get("value")
    shown = "n/a" if value is None else f"{100 * value:.2f}"
    click.echo(
        f"{out}: {status['state']}, {status.get('iter')} iterations, {status.get('images_per_s', 0):.1f} images/s; "
        f"best.pt = iteration {best.get('iter')} ({best.get('metric')} {shown})"
    )
