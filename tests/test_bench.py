"""The bench harness end to end on the tiny synthetic set with dummy methods registered here.

Covers: train -> embed -> score -> leaderboard numbers, reuse without retraining, failure
isolation, resume of an interrupted bench, mean ± std over seeds, the synthetic cache and the CLI.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from atustc.bench.board_render import to_csv, to_latex, to_markdown
from atustc.bench.harness import BenchData, ensure_synthetic, run_bench, synthetic_key, user_data
from atustc.bench.leaderboard import SCENARIOS, load_leaderboard
from atustc.errors import AtustcError
from atustc.methods import Batch, LabelSpace, MethodSpec, Recipe, list_methods, register_method, unregister_method

CALLS: Counter[str] = Counter()  # builds (train and embed) and loss calls (iterations) per method
INTERRUPT_AT: dict[str, int] = {}  # method -> loss call that raises KeyboardInterrupt


class Dummy(nn.Module):
    """Pooled pixels -> linear embedding; CE on a classifier. Trains in milliseconds."""

    head_names = ("global",)

    def __init__(self, name: str, labels: LabelSpace) -> None:
        super().__init__()
        self.name = name
        self.embedding = nn.Linear(3 * 8 * 4, 16)
        self.classifier = nn.Linear(16, labels.num_pids)

    def _feat(self, batch: Batch) -> torch.Tensor:
        return self.embedding(nn.functional.adaptive_avg_pool2d(batch.images, (8, 4)).flatten(1))

    def forward(self, batch: Batch) -> torch.Tensor:
        if self.name == "bench-broken":
            raise RuntimeError("dummy failure")
        return self.classifier(self._feat(batch))

    def loss(self, outputs: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        CALLS[f"{self.name}:loss"] += 1
        if INTERRUPT_AT.get(self.name) == CALLS[f"{self.name}:loss"]:
            raise KeyboardInterrupt
        return {"total": nn.functional.cross_entropy(outputs, batch.pid)}

    def embed(self, batch: Batch) -> torch.Tensor:
        return nn.functional.normalize(self._feat(batch), dim=1).unsqueeze(1)


def _recipe(preset: str) -> Recipe:
    return Recipe(
        optimizer="adamw",
        lr=1e-2,
        weight_decay=0.0,
        epochs=2,
        iters_per_epoch=3,
        warmup_epochs=0,
        sampler="pk",
        num_identities=4,
        num_instances=2,
        input_size=(32, 16),
        pad=2,
    )


def _spec(name: str) -> MethodSpec:
    def build(labels: LabelSpace, preset: str, pretrained: Path | None = None) -> Dummy:
        CALLS[f"{name}:build"] += 1
        return Dummy(name, labels)

    scoring = _affinity if name == "bench-scored" else None
    return MethodSpec(name=name, family="CC-ReID", summary="test dummy", build=build, recipe=_recipe, scoring=scoring)


def _affinity(recipe: Recipe):
    from atustc.affinity import AffinityConfig

    return AffinityConfig(k1=recipe.extra.get("ai_k1", 3), k2=2)


NAMES = ("bench-dummy", "bench-broken", "bench-interrupt", "bench-scored")


@pytest.fixture(scope="module", autouse=True)
def dummy_methods():
    """Register the dummies for this module only (other tests see the real registry)."""
    list_methods()  # loads the built-ins first
    for name in NAMES:
        register_method(lambda name=name: _spec(name))
    yield
    for name in NAMES:
        unregister_method(name)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> BenchData:
    from atustc.synth import SynthConfig

    return ensure_synthetic(SynthConfig.named("test"), tmp_path_factory.mktemp("cache"), progress=False)


def _mtimes(run: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (run / "eval").iterdir()}


def test_bench_scores_runs_and_the_leaderboard_equals_them(data: BenchData, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    CALLS.clear()
    outcomes = run_bench(["bench-dummy"], data=data, seeds=[0, 1], out=out, progress=False, command="test")
    assert [(o.run_dir.name, o.state, o.action) for o in outcomes] == [
        ("bench-dummy-tiny-s0", "finished", "trained"),
        ("bench-dummy-tiny-s1", "finished", "trained"),
    ]
    assert CALLS["bench-dummy:loss"] == 2 * 6  # 2 epochs x 3 iterations per run
    results = [json.loads((o.run_dir / "eval" / "atustc@last.json").read_text()) for o in outcomes]
    mixed = [json.loads((o.run_dir / "eval" / "atustc-mixed@last.json").read_text()) for o in outcomes]
    for res in results:  # Any-Time is the mean of the six scenarios
        for metric in ("R1", "mAP"):
            mean6 = sum(res["scenarios"][s][metric] for s in SCENARIOS) / 6
            assert res["summary"]["Any-Time"][metric] == pytest.approx(mean6, abs=1e-12)
    bench = json.loads((out / "bench.json").read_text())
    assert bench["command"] == "test" and bench["seeds"] == [0, 1] and bench["data"]["table_hash"] == data.table_hash
    assert [r["state"] for r in bench["runs"]] == ["finished", "finished"] and bench["finished"]
    manifest = json.loads((outcomes[0].run_dir / "manifest.json").read_text())
    assert manifest["table_hash"] == data.table_hash and manifest["packages"]["torch"]

    board = load_leaderboard(out)
    row = pd.read_csv(io.StringIO(to_csv(board))).iloc[0]
    assert (row["method"], row["family"], row["seeds"], row["n_runs"]) == ("bench-dummy", "CC-ReID", "0;1", 2)
    assert row["data_hash"] == data.table_hash
    for scen in SCENARIOS:
        values = [r["scenarios"][scen]["mAP"] for r in results]
        assert row[f"{scen}_mAP_mean"] == pytest.approx(sum(values) / 2, abs=1e-15)
        assert row[f"{scen}_mAP_std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2), abs=1e-15)
    values = [r["summary"]["Any-Time"]["R1"] for r in results]
    assert row["Any-Time_R1_mean"] == pytest.approx(sum(values) / 2, abs=1e-15)
    values = [m["summary"]["Anytime"]["mAP"] for m in mixed]
    assert row["Mixed-Anytime_mAP_mean"] == pytest.approx(sum(values) / 2, abs=1e-15)
    assert "bench-dummy" in to_markdown(board) and r"\begin{table}" in to_latex(board)

    # a second bench reuses the finished runs: nothing rebuilt, eval files untouched
    before = _mtimes(outcomes[0].run_dir)
    again = run_bench(["bench-dummy"], data=data, seeds=[0, 1], out=out, progress=False, command="test")
    builds = CALLS["bench-dummy:build"]
    assert [o.action for o in again] == ["reused", "reused"] and CALLS["bench-dummy:build"] == builds
    assert _mtimes(outcomes[0].run_dir) == before
    # a lost eval file is scored again without retraining; --force retrains
    (outcomes[1].run_dir / "eval" / "atustc-mixed@last.json").unlink()
    again = run_bench(["bench-dummy"], data=data, seeds=[1], out=out, progress=False)
    assert again[0].action == "scored" and CALLS["bench-dummy:loss"] == 12
    assert json.loads((outcomes[1].run_dir / "eval" / "atustc-mixed@last.json").read_text()) == mixed[1]
    again = run_bench(["bench-dummy"], data=data, seeds=[0], out=out, force=True, progress=False)
    assert again[0].action == "trained" and CALLS["bench-dummy:loss"] == 18
    # same seed, same data: the retrained run scores the same, from the same features (its
    # checkpoint file differs: it holds the training time)
    rescored = json.loads((outcomes[0].run_dir / "eval" / "atustc@last.json").read_text())
    prov, before_prov = rescored.pop("provenance"), results[0].pop("provenance")
    assert rescored == results[0] and prov["features_sha256"] == before_prov["features_sha256"]
    assert prov["checkpoint"] == "last" and prov["protocol_sha256"] == before_prov["protocol_sha256"]


def test_set_dependent_scoring_reaches_the_eval_files(data: BenchData, tmp_path: Path) -> None:
    from atustc.affinity import AffinityConfig
    from atustc.engine import embed_run
    from atustc.evaluate import evaluate
    from atustc.protocol import load_protocol
    from atustc.split import load_split

    (outcome,) = run_bench(["bench-scored"], data=data, out=tmp_path, progress=False, overrides={"extra.ai_k1": 4})
    record = json.loads((outcome.run_dir / "eval" / "atustc@last.json").read_text())
    assert record["scoring"] == "affinity k1=4,k2=2"  # the run's recipe reaches the scoring
    test = load_split(data.split_dir).test
    features = embed_run(outcome.run_dir, test, data.root, checkpoint="last", progress=False)
    protocol = load_protocol("atustc")
    expected = evaluate(protocol, test, features, scores=AffinityConfig(4, 2).hook()).to_dict()
    assert record["summary"] == expected["summary"] and record["scenarios"] == expected["scenarios"]
    assert evaluate(protocol, test, features).to_dict()["scenarios"] != expected["scenarios"]


def test_failing_method_is_recorded_and_the_others_go_on(data: BenchData, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    outcomes = run_bench(["bench-broken", "bench-dummy"], data=data, out=out, progress=False)
    assert [o.state for o in outcomes] == ["failed", "finished"]
    assert "RuntimeError: dummy failure" in outcomes[0].error
    status = json.loads((out / "bench-broken-tiny-s0" / "status.json").read_text())
    assert status["state"] == "failed" and "dummy failure" in status["error"]
    board = load_leaderboard(out)
    frame = board.frame.set_index("method")
    assert frame.loc["bench-broken", "status"] == "failed" and frame.loc["bench-dummy", "status"] == "finished"
    assert "dummy failure" in to_markdown(board)
    # a rerun retries the failed run (from scratch) and says so
    again = run_bench(["bench-broken"], data=data, out=out, progress=False)
    assert (again[0].action, again[0].state) == ("retried", "failed")
    # an unknown method fails before anything runs
    with pytest.raises(AtustcError, match="unknown method 'bench-dumy'; did you mean bench-dummy"):
        run_bench(["bench-dumy"], data=data, out=out, progress=False)


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        ({"lr": "-1"}, r"recipe: lr must be > 0, got -1.0 \(for every method; first refused by bench-dummy\)"),
        ({"nosuchkey": "1"}, r"--set nosuchkey: unknown key; known keys: "),
    ],
)
def test_a_bad_global_option_is_refused_once_before_any_run(data, tmp_path, capsys, sets, match) -> None:
    from atustc.cli import main

    out = tmp_path / "runs"
    with pytest.raises(AtustcError, match=match):
        run_bench(["bench-dummy", "bench-broken"], data=data, out=out, overrides=sets, progress=False)
    assert not out.exists()
    key, value = next(iter(sets.items()))
    args = [
        "bench",
        "--methods",
        "bench-dummy,bench-broken",
        "--table",
        str(data.table),
        "--split",
        str(data.split_dir),
    ]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(out), "--set", f"{key}={value}", "--no-progress"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and err.count("known keys") <= 1
    assert not out.exists()


def test_interrupted_bench_resumes_the_unfinished_run(data: BenchData, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    CALLS.clear()
    INTERRUPT_AT["bench-interrupt"] = 5  # after the epoch-1 checkpoint (iteration 3)
    with pytest.raises(KeyboardInterrupt):
        run_bench(["bench-interrupt"], data=data, out=out, progress=False)
    run = out / "bench-interrupt-tiny-s0"
    assert json.loads((run / "status.json").read_text())["state"] != "finished"
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / "eval").is_dir()
    del INTERRUPT_AT["bench-interrupt"]
    outcomes = run_bench(["bench-interrupt"], data=data, out=out, progress=False)
    assert outcomes[0].action == "resumed" and outcomes[0].state == "finished"
    assert CALLS["bench-interrupt:loss"] == 5 + 3  # 5 calls (the 5th raised), then iterations 4-6 again
    assert json.loads((run / "status.json").read_text())["iter"] == 6
    assert (run / "eval" / "atustc@last.json").is_file()


def test_finished_run_on_other_data_is_refused(data: BenchData, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "bench-dummy-tiny-s0"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished"}))
    (run / "manifest.json").write_text(json.dumps({"table_hash": "0000000000000000"}))
    with pytest.raises(AtustcError, match="trained on another table .* pass --force"):
        run_bench(["bench-dummy"], data=data, out=tmp_path / "runs", progress=False)
    other = tmp_path / "runs" / "bench-dummy-tiny-s1"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(AtustcError, match="bench-dummy-tiny-s1 exists and is not a run folder"):
        run_bench(["bench-dummy"], data=data, seeds=[1], out=tmp_path / "runs", progress=False)


def test_synthetic_cache_is_built_once(data: BenchData) -> None:
    from atustc.synth import SynthConfig

    folder = data.table.parent
    assert folder.name == synthetic_key(SynthConfig.named("test"))
    assert synthetic_key(SynthConfig.named("test", seed=1)) != folder.name
    stamp = (folder / "data.json").stat().st_mtime_ns
    again = ensure_synthetic(SynthConfig.named("test"), folder.parent, progress=False)
    assert again == data and (folder / "data.json").stat().st_mtime_ns == stamp
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left behind
    assert user_data(data.table, data.split_dir, None).table_hash == data.table_hash


def test_cli_bench_and_errors(data: BenchData, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from atustc.cli import main

    out = tmp_path / "runs"
    base = ["bench", "--table", str(data.table), "--split", str(data.split_dir), "--out", str(out), "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        main([*base, "--methods", "bench-dummy,bench-broken"])
    assert exc.value.code == 1  # one run failed
    captured = capsys.readouterr()
    assert "bench-dummy" in captured.out and "leaderboard" in captured.out
    assert "1 of 2 run(s) failed" in captured.err
    main([*base, "--methods", "bench-dummy"])  # reused: exit 0
    for argv, message in [
        (["bench", "--table", str(data.table)], "needs --split"),
        (["bench", "--split", str(data.split_dir)], "--split and --root need --table"),
        ([*base, "--seeds", "0,x"], "--seeds: 'x' is not an integer"),
        ([*base, "--methods", "bench-dummy,bench-dummy"], "duplicate value"),
        ([*base, "--set", "epochs"], "--set 'epochs': expected key=value"),
        ([*base, "--methods", "nope"], "unknown method 'nope'"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err, argv
