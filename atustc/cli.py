"""The ``atustc`` command line.

Sub-commands live in :mod:`atustc.commands` (one module each, exposing a click command named
``command``) and are imported only when invoked, so ``atustc --help`` and the commands that need
no model never import torch or timm. An :class:`~atustc.errors.AtustcError` raised anywhere is
printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from atustc import __version__
from atustc.errors import AtustcError

#: name -> (module under atustc.commands, one-line help shown by ``atustc --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "Generate the embedded synthetic AT-USTC dataset."),
    "index": ("index", "Index a dataset tree into an annotation table (parquet)."),
    "split": ("split", "Build train/val/test tables and scenario query/gallery lists."),
    "stats": ("stats", "Fig. 2-style dataset statistics, CSVs and figures."),
    "eval": ("eval", "Score saved features (or a run) on a protocol."),
    "train": ("train", "Train a registered method from a table and a split."),
    "embed": ("embed", "Extract features of a trained run."),
    "bench": ("bench", "Train and score several methods; print the leaderboard."),
    "leaderboard": ("leaderboard", "Rebuild the leaderboard from run folders."),
    "show": ("show", "Pictures of results: rank lists and CMC curves."),
}


#: ``click.Context.meta`` key of the sub-command's argv as the user typed it (see :func:`command_argv`).
ARGV_KEY = "atustc.argv"


def command_argv() -> list[str]:
    """The running sub-command's argv as given (``["train", "--method", ...]``), for re-launching it."""
    return list(click.get_current_context().meta[ARGV_KEY])


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"atustc.commands.{COMMANDS[cmd_name][0]}")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        name = args[0] if args else ""
        ctx.meta[ARGV_KEY] = list(args)  # the sub-command's own argv, passed on by --nproc launches
        if name and name not in COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, COMMANDS, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; commands: {', '.join(COMMANDS)}"
            raise click.UsageError(f"unknown command {name!r}{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="atustc")
def cli() -> None:
    """atustc: Anytime Person Re-Identification toolkit and benchmark harness."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, turning AtustcError into one line and exit 2."""
    try:
        rv = cli.main(args=argv, prog_name="atustc", standalone_mode=False)
    except AtustcError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(rv, int) and rv:
        sys.exit(rv)


if __name__ == "__main__":
    main()
