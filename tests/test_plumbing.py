"""Plumbing: the run lock, --nproc argument passing, the bench's train arguments, no import cycles."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from atustc.engine.request import TrainRequest, request_argv
from atustc.errors import AtustcError
from atustc.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_process_on_the_same_folder_refuses_in_one_line(tmp_path):
    run = RunFolder(tmp_path / "run")
    with run.lock("train"):
        assert "pid" in run.lock_file.read_text()
        with pytest.raises(AtustcError, match=r"run is in use by atustc train \(pid \d+\); wait for it") as exc:
            with RunFolder(tmp_path / "run").lock("bench"):
                pass
        assert "\n" not in exc.value.message
        assert not run.exists()  # the lock file alone does not make a run
    assert not run.path.exists()  # created by the lock, left empty: removed again
    with run.lock():
        (run.path / "status.json").write_text("{}")
    assert run.path.is_dir() and run.lock_file.is_file()
    with run.lock():  # released: the next process gets it
        pass


def test_train_and_bench_refuse_a_locked_folder(tmp_path, capsys):
    from atustc.cli import main
    from engine_helpers import METHOD, make_dataset

    _, table, split = make_dataset(tmp_path / "d", ids=4)
    out = tmp_path / "out"
    common = ["--table", str(table), "--split", str(split), "--out", str(out), "--plugin", "engine_plugin"]
    with RunFolder(out).lock("bench"):
        for args in (["train", "--method", METHOD, *common], ["bench", "--methods", METHOD, *common]):
            with pytest.raises(SystemExit) as exc:
                main(args)
            err = capsys.readouterr().err
            assert exc.value.code == 2 and f"{out} is in use by atustc bench (pid" in err, err
    assert not out.exists()  # nothing was trained or written there


def test_reset_keeps_the_lock(tmp_path):
    run = RunFolder(tmp_path / "run")
    with run.lock():
        (run.path / "old.txt").write_text("x")
        run.reset()
        assert sorted(p.name for p in run.path.iterdir()) == [".lock", "checkpoints"]


def test_nproc_passes_the_users_own_arguments_to_torchrun(tmp_path, monkeypatch):
    import atustc.engine.distributed as dist
    import atustc.engine.setup as setup_mod
    from atustc.cli import cli

    seen = {}
    monkeypatch.setattr(dist, "launch", lambda nproc, argv: seen.update(nproc=nproc, argv=argv))
    monkeypatch.setattr(setup_mod, "prepare", lambda request, world=1: seen.update(request=request, world=world))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr("atustc.commands.train._summary", lambda out: seen.update(summary=out))
    args = [
        "train",
        "--method",
        "m",
        "--table",
        "t.parquet",
        "--split",
        "s",
        "--out",
        str(tmp_path / "o"),
        "--nproc",
        "3",
        "--set",
        "epochs=2",
        "--set=lr=0.1",
        "--amp",
        "bf16",
        "--plugin",
        "x.y",
        "--quiet",
    ]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert seen["nproc"] == 3 and seen["world"] == 3
    assert seen["argv"] == [a for a in args if a not in ("--nproc", "3")]  # every option survives, in order
    assert seen["request"].overrides == {"epochs": "2", "lr": "0.1"} and seen["request"].plugins == ("x.y",)
    assert not (tmp_path / "o").exists()  # the launcher's lock left nothing behind


def test_bench_train_arguments_give_the_request_back(tmp_path, monkeypatch):
    """Every TrainRequest field survives ``atustc bench --nproc`` (request -> argv -> atustc train -> request)."""
    import atustc.engine.train as train_mod
    from atustc.cli import cli

    request = TrainRequest.make(
        "m", tmp_path / "t.parquet", tmp_path / "s", "paper", tmp_path / "o", seed=7, resume=True, force=True,
        root=tmp_path / "r", pretrained=tmp_path / "w.pt", overrides={"epochs": "2", "extra.k": "v"},
        device="cpu", amp="bf16", compile=True, plugins=("a.b",), progress=False,
    )  # fmt: skip
    unset = [f.name for f in dataclasses.fields(TrainRequest) if getattr(request, f.name) == f.default]
    assert unset == []  # the case sets every field away from its default (a new field must be added here)
    seen = {}
    monkeypatch.setattr(train_mod, "run_training", lambda r: seen.update(request=r) or r.out)
    monkeypatch.setattr("atustc.commands.train._summary", lambda out: None)
    res = CliRunner().invoke(cli, request_argv(request), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert seen["request"] == request


def test_bench_help_has_nproc_and_plugin():
    from atustc.cli import cli

    out = CliRunner().invoke(cli, ["bench", "--help"]).output
    assert "--nproc" in out and "--plugin" in out


def _modules() -> list[str]:
    names = []
    for pkg in ("atustc", "baselines"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            names.append(".".join(parts))
    return names


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter():
    """No import cycles: each module imported first, alone, in a new interpreter (a cycle fails there)."""
    code = (
        "import importlib, subprocess, sys\n"
        "bad = []\n"
        "for name in sys.argv[1:]:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True, text=True)\n"
        "    if r.returncode: bad.append(name + ': ' + r.stderr.strip().splitlines()[-1])\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, *_modules()], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def test_torch_free_modules_do_not_import_torch():
    code = (
        "import sys\nimport atustc.runfolder, atustc.provenance, atustc.engine.request, atustc.cli\n"
        "import atustc.commands.bench, atustc.commands.train\nprint('torch' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.stdout.strip() == "False", res.stderr


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    """A killed run's forked data-loader workers may still hold the lock; its recorded holder is dead."""
    import fcntl
    import os

    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.lock_file.write_text(f"atustc train (pid {dead.pid})")
    fd = os.open(run.lock_file, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held by "an orphan" (this fd), the named holder is gone
    try:
        with run.lock("train"):
            entered = True
        with run.lock("train"):  # and again: taking over names no new holder that would then look alive
            pass
    finally:
        os.close(fd)
    assert entered


def _top_level_imports(name: str, path: Path, modules: set[str]) -> tuple[set[str], list[str]]:
    """The package modules ``name`` imports when it is imported (TYPE_CHECKING blocks and function
    bodies left out), and its imports of private names from other modules."""
    import ast

    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    edges: set[str] = set()
    private: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body + getattr(node, "orelse", []))
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                src = ".".join(base + [node.module] if node.module else base)
                edges.update({src} & modules - {name})  # `from pkg import sub` in pkg/__init__: sub only
                for a in node.names:
                    if f"{src}.{a.name}" in modules:
                        edges.add(f"{src}.{a.name}")
                    elif a.name.startswith("_") and not a.name.startswith("__") and src != name:
                        private.append(f"{name}: from {src} import {a.name}")

    visit(ast.parse(path.read_text()).body)
    return edges, private


def test_no_import_cycles_and_no_private_names_across_modules():
    """Static check (the fast twin of the fresh-interpreter test): the module-level imports of
    atustc, baselines and the tests form no cycle, and no module imports another's ``_name``."""
    import graphlib

    paths = {}
    for pkg in ("atustc", "baselines", "tests"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            paths[".".join(parts[1:] if pkg == "tests" else parts)] = path
    graph, private = {}, []
    for name, path in paths.items():
        graph[name], bad = _top_level_imports(name, path, set(paths))
        private += bad
    assert not private, private
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle
