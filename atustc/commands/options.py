"""Click options that several commands share (one definition each, so their help cannot drift apart)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def table_option(help: str = "Annotation table (.parquet).") -> Decorator:
    """``--table`` (required), passed as ``table_path``."""
    return click.option("--table", "table_path", required=True, type=click.Path(path_type=Path), help=help)


def features_option(help: str = "Saved features (.npz with relpath, heads, feat).") -> Decorator:
    """``--features``, passed as ``features_path``."""
    return click.option("--features", "features_path", type=click.Path(path_type=Path), help=help)


def run_option(help: str) -> Decorator:
    """``--run``, a trained run folder to embed with, passed as ``run_dir``."""
    return click.option("--run", "run_dir", type=click.Path(path_type=Path), help=help)


def checkpoint_option(help: str = "Checkpoint used with --run.") -> Decorator:
    """``--checkpoint best|last`` (default ``best``)."""
    return click.option(
        "--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True, help=help
    )


def root_option(
    help: str = "Image root (default: the table's split.json or manifest root, else the run's).",
) -> Decorator:
    """``--root``: the image root, resolved by :func:`atustc.table.image_root` when not given."""
    return click.option("--root", type=click.Path(path_type=Path), help=help)


def progress_option() -> Decorator:
    """``--progress/--no-progress`` (default on)."""
    return click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr.")
