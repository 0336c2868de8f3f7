"""Error messages name their file, row, argument or option (the README's promise), as one line."""

import numpy as np
import pytest

from atustc.errors import AtustcError
from atustc.evaluate import evaluate
from atustc.features import Features, load_features, save_features
from atustc.protocol import load_protocol
from atustc.stats import build_report, format_summary
from atustc.synth import SynthConfig
from ranking_reference import exact_features, make_table


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    d = tmp_path_factory.mktemp("err")
    table = make_table(11, n_pid=5)
    f = exact_features(11, table)
    save_features(Features(f.relpath[5:], f.heads, f.feat[5:]), d / "short.npz")
    save_features(
        Features(np.concatenate([f.relpath, f.relpath[:1]]), f.heads, np.concatenate([f.feat, f.feat[:1]])),
        d / "dup.npz",
    )
    return d, table


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda d, t: evaluate(load_protocol("atustc"), t, load_features(d / "short.npz")),
            r"^\S*short\.npz: \d+ of the \d+ images the protocol needs have no feature \(first: p\d+",
        ),
        (
            lambda d, t: evaluate(load_protocol("atustc"), t, load_features(d / "dup.npz")),
            r"^\S*dup\.npz: relpath 'p\S+' appears more than once$",
        ),
        (
            lambda d, t: Features(np.array(["a"]), ("g",), np.zeros((1, 2, 3), np.float32), source="mine.npz"),
            r"^mine\.npz: 1 head names for 2 heads$",
        ),
        (lambda d, t: build_report({}), r"^tables: no table given"),
        (lambda d, t: build_report({"x.parquet": t}, labels=["a", "b"]), r"^labels: got 2 label\(s\) for 1 table\(s\)"),
        (
            lambda d, t: format_summary(build_report({"x.parquet": t}, published=False), "xml"),
            r"^fmt: unknown summary format 'xml'; choose one of csv, json, md$",
        ),
        (
            lambda d, t: SynthConfig(ir_cams_per_capture=(2, 9)),
            r"^rgb_cams_per_capture and ir_cams_per_capture: at most 8 cameras each .* got \(\d+, \d+\) and \(2, 9\)$",
        ),
    ],
)
def test_message_names_its_subject(scored, call, match):
    d, table = scored
    with pytest.raises(AtustcError, match=match) as exc:
        call(d, table)
    assert "\n" not in str(exc.value)


def _launch_fails(monkeypatch):
    import subprocess

    from atustc.engine.distributed import launch

    monkeypatch.setattr(subprocess, "call", lambda *a, **k: 1)
    launch(2, ["train", "--out", "runs/r0"])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda mp: __import__("atustc.split", fromlist=["make_split"]).make_split(
                make_table(1, n_pid=3, flags=(0,)), source="train-only.parquet"
            ),
            r"^train-only\.parquet: the split has no test images \(no rows with flags 2-10\)$",
        ),
        (
            lambda mp: __import__("atustc.engine.config", fromlist=["x"]).apply_overrides(
                __import__("atustc.methods.contract", fromlist=["Recipe"]).Recipe(),
                __import__("atustc.engine.config", fromlist=["x"]).EngineConfig(),
                {"epochs": "0"},
            ),
            r"^--set epochs=0: recipe: epochs and iters_per_epoch must be >= 1, got 0, ",
        ),
        (
            lambda mp: __import__("atustc.engine.config", fromlist=["x"]).EngineConfig(num_workers=-1),
            r"^engine setting num_workers must be >= 0, got -1$",
        ),
        (
            lambda mp: __import__("atustc.engine.config", fromlist=["x"]).recipe_from_dict({"lr": -1}, "r/config.json"),
            r"^r/config\.json: recipe: lr must be > 0, got -1$",
        ),
        (
            lambda mp: build_report({"odd.parquet": make_table(1, n_pid=3).assign(split="probe")}),
            r"^odd\.parquet: atustc: column 'split' must be one of .* got 'probe'$",
        ),
        (
            _launch_fails,
            r"^--nproc 2: distributed training failed \(torchrun exit status 1\); .* in runs/r0/train\.log$",
        ),
    ],
)
def test_engine_split_and_stats_messages_name_their_subject(monkeypatch, call, match):
    with pytest.raises(AtustcError, match=match) as exc:
        call(monkeypatch)
    assert "\n" not in str(exc.value)
