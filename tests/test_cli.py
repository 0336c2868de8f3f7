"""The CLI shell: lazy commands, start-up cost, unknown commands, one-line errors."""

import subprocess
import sys

from atustc.cli import COMMANDS


def run(*args):
    return subprocess.run([sys.executable, "-m", "atustc.cli", *args], capture_output=True, text=True)


def test_help_lists_every_command_without_importing_torch():
    code = "import sys; from atustc.cli import main; sys.argv=['atustc','--help']\ntry:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    for name in COMMANDS:
        assert name in out
    assert out.strip().endswith("False False")


def test_unknown_command_suggests_close_match():
    res = run("stat")
    assert res.returncode == 2
    assert "unknown command 'stat'; did you mean stats" in res.stderr


def test_every_command_module_exposes_a_click_command():
    import importlib

    import click

    for module, _ in COMMANDS.values():
        assert isinstance(importlib.import_module(f"atustc.commands.{module}").command, click.Command)
