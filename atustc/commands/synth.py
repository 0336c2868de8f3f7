"""``atustc synth OUT``: generate the embedded synthetic AT-USTC dataset."""

from __future__ import annotations

import os
from pathlib import Path

import click

from atustc.errors import AtustcError


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise AtustcError(f"--image-size must be HEIGHTxWIDTH (e.g. 128x64), got {text!r}") from None
    return h, w


@click.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--size",
    "size",
    type=click.Choice(["test", "default", "large"]),
    default="default",
    show_default=True,
    help="Named size: test (24 ids, ~770 images), default (200 ids, ~8,900), large (270 ids, ~32,000).",
)
@click.option("--identities", type=int, default=None, help="Number of people (overrides the size).")
@click.option("--seed", type=int, default=0, show_default=True, help="Master seed: same seed, same bytes.")
@click.option("--image-size", "image_size", default=None, help="HEIGHTxWIDTH in pixels (default 128x64).")
@click.option(
    "--workers",
    type=int,
    default=0,
    show_default=True,
    help="Rendering processes; 0 = one per CPU core (1 for small sets).",
)
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists and is not empty.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--layout",
    default="atustc",
    show_default=True,
    help="Release layout: atustc, or a miniature of market1501, cuhk03, msmt17, prcc, ltcc, deepchange, "
    "sysu-mm01, regdb, llcm "
    "(folders, names and list files as released; --size, --identities, --image-size do not apply).",
)
def command(
    out: Path,
    size: str,
    identities: int | None,
    seed: int,
    image_size: str | None,
    workers: int,
    overwrite: bool,
    quiet: bool,
    layout: str,
) -> None:
    """Generate a synthetic AT-USTC tree OUT/pXXX-dYY-cZZ/camNN-fF-FFFF.jpg (cams 1-8 RGB, 9-16 IR).

    Identities are split 1:1 into train and test (20% of train identities flagged validation);
    test images get query/gallery flags by the per-clip rule of atustc.split.flags.
    """
    if layout != "atustc":
        from atustc.synth.layouts import miniature_root, write_layout

        n, seconds = write_layout(out, layout, seed, overwrite=overwrite)
        root = miniature_root(out, layout)
        click.echo(
            f"{out}: {layout} miniature, {n} images (seed {seed}) in {seconds:.2f} s\n"
            f"next: atustc index {root} --format {layout} -o {out.name}.parquet"
        )
        return
    from atustc.synth import SynthConfig, make_plan, synthesize

    config = SynthConfig.named(size, seed=seed, identities=identities, image_size=_parse_size(image_size))
    if workers < 0:
        raise AtustcError(f"--workers must be >= 0, got {workers}")
    if workers == 0:
        workers = 1 if len(make_plan(config)) < 2000 else (os.cpu_count() or 1)
    result = synthesize(out, config, progress=not quiet, workers=workers, overwrite=overwrite)
    click.echo(
        f"{result.root}: {result.images} images of {result.identities} identities "
        f"({config.image_size[0]}x{config.image_size[1]}, seed {config.seed}) in {result.seconds:.2f} s "
        f"({result.images_per_s:,.0f} images/s, {workers} worker{'s' if workers > 1 else ''})\n"
        f"next: atustc index {out} -o {out.name}.parquet"
    )
