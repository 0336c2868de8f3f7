"""End-to-end engine tests: run folder, embed, training beats init, SIGKILL + resume, DDP, bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from atustc.engine import embed_run, train_run
from atustc.engine.checkpoint import load_checkpoint
from atustc.engine.data import build_label_maps
from atustc.engine.embed import extract_features
from atustc.features import load_features
from atustc.methods import is_registered, register_method, unregister_method

TESTS = Path(__file__).parent
from engine_helpers import METHOD, make_dataset, tiny_spec  # noqa: E402

FAST = {"num_workers": 0, "log_every": 2}


@pytest.fixture(scope="module", autouse=True)
def method():
    if not is_registered(METHOD):
        register_method(tiny_spec)
    yield METHOD
    unregister_method(METHOD)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("engine-data"))


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    _, table, split = data
    out = tmp_path_factory.mktemp("runs") / "run"
    train_run(METHOD, table, split, "tiny", out, overrides=FAST, progress=False)
    return out


def _cli(*args: str) -> tuple[int, str]:
    """Run ``atustc`` in-process; (exit status, stderr-ish message)."""
    import contextlib
    import io

    from atustc.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(TESTS), HF_HUB_OFFLINE="1")
    return env


def _atustc_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "atustc.cli", *args]


def _losses(run: Path) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k != "images_per_s"}
        for r in json.loads("[" + ",".join((run / "metrics.jsonl").read_text().splitlines()) + "]")
    ]


# --- the run folder and embed -------------------------------------------------------------------


def test_run_folder_is_complete(trained, data):
    root, table, split = data
    files = {p.relative_to(trained).as_posix() for p in trained.rglob("*") if p.is_file()}
    assert files == {
        "config.json",
        "manifest.json",
        "status.json",
        "train.log",
        "metrics.jsonl",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        ".lock",  # the run's lock file (kept: removing it would race with a process waiting on it)
    }
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["method"] == METHOD and cfg["preset"] == "tiny" and cfg["seed"] == 0
    assert cfg["recipe"]["epochs"] == 3 and cfg["engine"]["num_workers"] == 0
    assert cfg["root"] == root.resolve().as_posix() and cfg["label_space"]["num_pids"] == 6
    man = json.loads((trained / "manifest.json").read_text())
    assert man["packages"]["torch"] == torch.__version__ and man["seed"] == 0
    assert {"git", "device", "seed", "table_hash", "split_hash", "python", "environment"} <= set(man)
    assert man["machine"]["cores"] == os.cpu_count() and man["machine"]["cpu"] and "gpus" in man["machine"]
    status = json.loads((trained / "status.json").read_text())
    assert 0 < status["train_cpu_s"]  # process CPU time beside the wall time
    assert set(status["checkpoints"]) == {"best", "last"} and len(status["checkpoints"]["last"]["sha256"]) == 64
    assert status["state"] == "finished" and status["error"] is None and status["params"] == 1360
    assert status["model_config"] == {}  # the test net keeps no dataclass config
    assert status["images_per_s"] > 0 and status["train_time_s"] > 0
    assert 0 < status["step_time_s"] * status["iter"] <= status["train_time_s"]
    assert 0 < status["step_cpu_s"] * status["iter"] <= status["train_cpu_s"]  # the steps' share of the CPU time
    best = status["best"]
    assert best["metric"] == "val/atustc/Any-Time/mAP" and 0 <= best["value"] <= 1
    records = [json.loads(x) for x in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "val" not in r] == [2, 4, 6, 8, 10, 12]
    vals = [r for r in records if "val" in r]
    assert [r["iter"] for r in vals] == [4, 8, 12]
    assert best["value"] == max(r["val"]["summary"]["Any-Time"]["mAP"] for r in vals)
    losses = [r for r in records if "val" not in r]
    # per-iteration schedule: iteration 2 (it = 1, epoch 0.25) warms up, iteration 6 (epoch 1.25) is on the cosine
    cos = 0.002 + 0.998 * 0.5 * (1 + math.cos(math.pi * 0.125))
    assert losses[0]["lr"] == pytest.approx(0.1 * 0.325) and losses[2]["lr"] == pytest.approx(0.1 * cos)
    assert load_checkpoint(trained / "checkpoints/best.pt", kind="best")["iter"] == best["iter"]


def test_embed_cli_matches_embed_run(trained, data, tmp_path):
    from atustc.split import load_split

    _, table, split = data
    test = load_split(split).test
    feats = embed_run(trained, test, progress=False)
    assert feats.feat.shape == (len(test), 1, 16) and feats.heads == ("global",)
    assert feats.relpath.tolist() == test["relpath"].tolist()
    code, err = _cli(
        "embed",
        "--run",
        str(trained),
        "--table",
        str(table),
        "--split",
        str(split),
        "-o",
        str(tmp_path / "f.npz"),
        "--quiet",
    )
    assert code == 0, err
    saved = load_features(tmp_path / "f.npz")
    np.testing.assert_allclose(saved.feat, feats.feat, rtol=1e-6, atol=1e-6)
    last = embed_run(trained, test, checkpoint="last", progress=False)
    assert last.feat.shape == feats.feat.shape


def test_training_beats_the_untrained_model(trained, data):
    from atustc.evaluate import evaluate
    from atustc.protocol import load_protocol
    from atustc.split import load_split

    root, _, split_dir = data
    split = load_split(split_dir)
    proto = load_protocol("atustc")
    trained_map = evaluate(proto, split.test, embed_run(trained, split.test, progress=False)).to_dict()
    torch.manual_seed(0)
    cfg = json.loads((trained / "config.json").read_text())
    maps = build_label_maps(split.train)
    model = tiny_spec().build(maps.space, "tiny", None).eval()
    init = extract_features(model, split.test, root, tiny_spec().recipe("tiny"), maps, torch.device("cpu"), 64)
    init_map = evaluate(proto, split.test, init).to_dict()
    assert cfg["method"] == METHOD
    t, i = trained_map["summary"]["Any-Time"], init_map["summary"]["Any-Time"]
    assert t["mAP"] > i["mAP"] + 0.05 and t["R1"] > i["R1"]


# --- resume after SIGKILL -----------------------------------------------------------------------

LONG = {"epochs": "2", "iters_per_epoch": "10", "checkpoint_every": "2", "log_every": "3"}


def test_resume_after_sigkill_ends_like_an_uninterrupted_run(data, tmp_path):
    _, table, split = data
    ref = train_run(
        METHOD, table, split, "tiny", tmp_path / "ref", overrides={**LONG, "num_workers": 0}, progress=False
    )
    out = tmp_path / "killed"
    sets = [a for k, v in {**LONG, "num_workers": "2"}.items() for a in ("--set", f"{k}={v}")]
    proc = subprocess.Popen(
        _atustc_cmd(
            "train",
            "--plugin",
            "engine_plugin",
            "--method",
            METHOD,
            "--table",
            str(table),
            "--split",
            str(split),
            "--out",
            str(out),
            "--quiet",
            *sets,
        ),
        env=_subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while not (out / "checkpoints" / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert json.loads((out / "status.json").read_text())["state"] == "running"
    killed_at = load_checkpoint(out / "checkpoints/last.pt")["iter"]
    assert 0 < killed_at < 20

    code, err = _cli("train", "--method", METHOD, "--table", str(table), "--split", str(split), "--out", str(out))
    assert code == 2 and "exists; pass --resume to continue it or --force" in err
    train_run(METHOD, table, split, "tiny", out, resume=True, overrides={**LONG, "num_workers": 1}, progress=False)

    a = load_checkpoint(ref / "checkpoints/last.pt")
    b = load_checkpoint(out / "checkpoints/last.pt")
    assert a["iter"] == b["iter"] == 20
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert _losses(ref) == _losses(out)
    sa, sb = (json.loads((r / "status.json").read_text()) for r in (ref, out))
    assert sb["state"] == "finished" and sa["best"] == sb["best"]
    assert "resuming from" in (out / "train.log").read_text()


# --- distributed --------------------------------------------------------------------------------


def test_ddp_two_processes_match_one(data, tmp_path):
    _, table, split = data
    one = train_run(METHOD, table, split, "tiny", tmp_path / "one", overrides=FAST, progress=False)
    two = tmp_path / "two"
    sets = [a for k, v in FAST.items() for a in ("--set", f"{k}={v}")]
    proc = subprocess.run(
        _atustc_cmd(
            "train",
            "--nproc",
            "2",
            "--plugin",
            "engine_plugin",
            "--method",
            METHOD,
            "--table",
            str(table),
            "--split",
            str(split),
            "--out",
            str(two),
            "--quiet",
            *sets,
        ),
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((two / "config.json").read_text())["world_size"] == 2
    status = json.loads((two / "status.json").read_text())
    assert status["state"] == "finished" and status["world_size"] == 2
    a = load_checkpoint(one / "checkpoints/last.pt")["model"]
    b = load_checkpoint(two / "checkpoints/last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    la, lb = _losses(one), _losses(two)
    assert [r["iter"] for r in la] == [r["iter"] for r in lb]
    for ra, rb in zip(la, lb):
        if "val" in ra:  # features gathered from both ranks: the same validation scores
            assert ra["val"]["summary"]["Any-Time"]["mAP"] == pytest.approx(
                rb["val"]["summary"]["Any-Time"]["mAP"], abs=1e-3
            )
        else:
            assert ra["loss/total"] == pytest.approx(rb["loss/total"], rel=1e-4)


# --- bad input: one line, exit status 2, nothing written ----------------------------------------


def _variant(data, tmp_path, name, edit):
    """A copy of the dataset's table with ``edit(table)`` applied, split with the official flags."""
    from atustc.io import write_json_atomic
    from atustc.split import load_split, make_split, write_split
    from atustc.table import manifest_path, save_table

    root, _, split_dir = data
    table = edit(load_split(split_dir).table.copy()).reset_index(drop=True)
    path = tmp_path / f"{name}.parquet"
    save_table(table, path)
    write_json_atomic(manifest_path(path), {"root": str(root)})
    write_split(make_split(table, "official", root=root), tmp_path / f"{name}-split")
    return path, tmp_path / f"{name}-split"


def test_bad_input_errors(data, tmp_path):
    _, table, split = data
    base = ["train", "--table", str(table), "--split", str(split), "--set", "num_workers=0", "--quiet"]
    cases = [
        (["--method", "engine-test-nett"], r"unknown method 'engine-test-nett'; did you mean engine-test-net"),
        (["--method", METHOD, "--set", "num_identities=7"], r"P=7 identities per batch but the train table has 6"),
        (["--method", METHOD, "--set", "bogus=1"], r"--set bogus: unknown key"),
        (["--method", METHOD, "--amp", "fp16", "--device", "cpu"], r"--amp fp16 needs a GPU"),
        (["--method", METHOD, "--pretrained", str(tmp_path / "none.pth")], r"--pretrained .*none.pth: file not found"),
        (["--method", METHOD, "--plugin", "no_such_module"], r"--plugin no_such_module: cannot import"),
        (["--method", METHOD, "--resume"], None),  # a missing run folder: --resume starts afresh
    ]
    for i, (extra, match) in enumerate(cases):
        out = tmp_path / f"run{i}"
        code, err = _cli(*base, "--out", str(out), *extra)
        if match is None:
            assert code == 0, err
            continue
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert __import__("re").search(match, err), err
        assert not out.exists()


def test_bad_data_errors(data, tmp_path):
    root, table, split = data
    no_train, no_train_split = _variant(data, tmp_path, "notrain", lambda t: t.assign(flag=t["flag"].replace(0, 1)))
    rgb_only, rgb_only_split = _variant(
        data, tmp_path, "rgbonly", lambda t: t[(t["flag"] != 0) | (t["modality"] == "rgb")]
    )
    cases = [
        (no_train, no_train_split, [], r"train.parquet: no train rows"),
        # asked for explicitly on RGB-only train rows (the recipe's own pk_modality falls back to pk)
        (
            rgb_only,
            rgb_only_split,
            ["--set", "sampler=pk_modality"],
            r"pk_modality needs at least P=4 identities with both RGB and IR .* has 0",
        ),
        (table, no_train_split, [], r"was made from another table"),
        (table, split, ["--root", str(tmp_path)], r"image p\d{3}-d01-c0\d/cam\d\d-f0-\d{4}.png not found under"),
    ]
    for i, (tab, spl, extra, match) in enumerate(cases):
        out = tmp_path / f"bad{i}"
        code, err = _cli(
            "train", "--method", METHOD, "--table", str(tab), "--split", str(spl), "--out", str(out), "--quiet", *extra
        )
        assert code == 2 and __import__("re").search(match, err), err
        assert not out.exists()
    # an identity without IR images still trains with the plain P x K sampler
    code, err = _cli(
        "train",
        "--method",
        METHOD,
        "--table",
        str(rgb_only),
        "--split",
        str(rgb_only_split),
        "--out",
        str(tmp_path / "pk"),
        "--quiet",
        "--set",
        "sampler=pk",
        "--set",
        "num_workers=0",
        "--set",
        "epochs=1",
        "--set",
        "warmup_epochs=0",
    )
    assert code == 0, err
    # no validation identities: no model selection, best.pt is the last weights, and the run says why
    no_val, no_val_split = _variant(data, tmp_path, "noval", lambda t: t.assign(flag=t["flag"].replace(1, 0)))
    out = train_run(
        METHOD,
        no_val,
        no_val_split,
        "tiny",
        tmp_path / "noval-run",
        progress=False,
        overrides={**FAST, "epochs": 1, "warmup_epochs": 0},
    )
    best = json.loads((out / "status.json").read_text())["best"]
    assert best["metric"] == "last (no validation score)" and best["reason"] == "the split has no validation rows"
    assert "no model selection: the split has no validation rows" in (out / "train.log").read_text()


def test_run_folder_and_checkpoint_errors(trained, data, tmp_path):
    import shutil

    _, table, split = data
    args = ["train", "--method", METHOD, "--table", str(table), "--split", str(split), "--quiet"]
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    last = run / "checkpoints/last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code, err = _cli(*args, "--out", str(run), "--resume")
    assert code == 2 and f"checkpoint {last} is corrupt or unreadable" in err, err
    assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    last.unlink()
    code, err = _cli(*args, "--out", str(run), "--resume")
    assert code == 2 and "has no checkpoints/last.pt to resume from; pass --force" in err
    code, err = _cli(*args, "--out", str(run), "--resume", "--set", "lr=0.5")
    assert code == 2 and "has no checkpoints/last.pt" in err
    other = tmp_path / "not-a-run"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    code, err = _cli(*args, "--out", str(other), "--force")
    assert code == 2 and "is not empty and is not a run folder; refusing to overwrite it" in err
    assert (other / "keep.txt").read_text() == "mine"

    resumable = tmp_path / "resumable"
    shutil.copytree(trained, resumable)
    code, err = _cli(*args, "--out", str(resumable), "--resume", "--set", "lr=0.5", "--set", "epochs=9")
    assert code == 2 and "--resume" in err and "recipe differs from the saved run: " in err
    assert "lr (0.1 there, 0.5 now); epochs (3 there, 9 now)" in err and "--force" not in err
    code, err = _cli(*args, "--out", str(resumable), "--resume", "--seed", "3")
    assert code == 2 and "seed differs from the saved run (0 there, 3 now)" in err and "--force" not in err

    (run / "checkpoints/best.pt").unlink()
    (run / "status.json").write_text(json.dumps({"state": "failed"}))
    code, err = _cli("embed", "--run", str(run), "--table", str(table), "-o", str(tmp_path / "f.npz"))
    assert code == 2 and "has no checkpoints/best.pt (state: failed); try --checkpoint last" in err
    assert not (tmp_path / "f.npz").exists()


def test_bf16_training_and_flip_averaged_features(data, tmp_path):
    from dataclasses import replace

    from atustc.engine.transforms import build_transforms
    from atustc.methods.contract import Batch
    from atustc.split import load_split

    root, table, split = data
    out = train_run(
        METHOD,
        table,
        split,
        "tiny",
        tmp_path / "bf16",
        amp="bf16",
        progress=False,
        overrides={**FAST, "epochs": 1, "warmup_epochs": 0},
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["amp"] == "bf16" and json.loads((out / "status.json").read_text())["state"] == "finished"
    assert all(np.isfinite(r["loss/total"]) for r in _losses(out) if "val" not in r)

    test = load_split(split).test.iloc[:5].reset_index(drop=True)
    maps = build_label_maps(load_split(split).train)
    model = tiny_spec().build(maps.space, "tiny", None).eval()
    recipe = replace(tiny_spec().recipe("tiny"), flip_test=True)
    got = extract_features(model, test, root, recipe, maps, torch.device("cpu"), 2).feat
    _, tf = build_transforms(recipe)
    from atustc.engine.data import load_image

    images = torch.stack([tf(load_image(root / r)) for r in test["relpath"]])
    zeros = torch.zeros(len(test), dtype=torch.long)
    with torch.no_grad():
        plain = model.embed(Batch(images, zeros, zeros, zeros, zeros))
        mirrored = model.embed(Batch(images.flip(-1), zeros, zeros, zeros, zeros))
    np.testing.assert_allclose(got, ((plain + mirrored) / 2).numpy(), rtol=1e-5, atol=1e-6)


def test_method_options_travel_with_the_run(data, tmp_path):
    """A method option set with --set is checked, kept in the recipe's extra and builds the same model at embed."""
    from dataclasses import replace

    from atustc.methods import MethodOption, temporary_method
    from engine_helpers import TinyNet

    root, table, split = data
    spec = replace(
        tiny_spec(),
        name="engine-test-opt",
        build=lambda labels, preset, pretrained, options: TinyNet(labels, dim=options["width"]),
        options=(MethodOption("width", "16", ("8", "16"), parse=int),),
    )
    with temporary_method(spec):
        out = train_run("engine-test-opt", table, split, "tiny", tmp_path / "run", progress=False,
                        overrides={**FAST, "width": "8"})  # fmt: skip
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["recipe"]["extra"] == {"width": "8"}
        feats = embed_run(out, table, root, progress=False)
        assert feats.feat.shape[1:] == (1, 8)
        code, err = _cli("train", "--method", "engine-test-opt", "--table", str(table), "--split", str(split),
                         "--out", str(tmp_path / "bad"), "--set", "width=9", "--quiet")  # fmt: skip
        assert code == 2 and "--set width=9: expected one of 8, 16" in err
