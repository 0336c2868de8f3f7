"""Cross-domain scoring and Table 1 mode end to end: a six-head dummy trained on the synthetic
AT-USTC (and on miniatures), scored zero-shot on the miniatures, from the harness and the CLI.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from atustc.bench.board_render import to_csv
from atustc.bench.crossdomain import Target, miniature_datasets, one_head, parse_domains, prepare_targets
from atustc.bench.harness import BenchData, run_bench, user_data
from atustc.bench.leaderboard import load_leaderboard
from atustc.methods import Batch, LabelSpace, MethodSpec, Recipe, list_methods, register_method, unregister_method
from atustc.runfolder import RunFolder
from atustc.scenarios import SCENARIOS

METHOD = "xd-six"
CALLS: Counter[str] = Counter()


class SixHeads(nn.Module):
    """Pooled pixels -> a linear embedding, seen through six fixed random projections (one per scenario head)."""

    head_names = SCENARIOS

    def __init__(self, labels: LabelSpace) -> None:
        super().__init__()
        self.embedding = nn.Linear(3 * 8 * 4, 16)
        self.classifier = nn.Linear(16, labels.num_pids)
        self.register_buffer("mix", torch.randn(6, 16, 16, generator=torch.Generator().manual_seed(0)))

    def _feat(self, batch: Batch) -> torch.Tensor:
        return self.embedding(nn.functional.adaptive_avg_pool2d(batch.images, (8, 4)).flatten(1))

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.classifier(self._feat(batch))

    def loss(self, outputs: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        CALLS["loss"] += 1
        return {"total": nn.functional.cross_entropy(outputs, batch.pid)}

    def embed(self, batch: Batch) -> torch.Tensor:
        return torch.einsum("bd,hde->bhe", self._feat(batch), self.mix)


def _recipe(preset: str) -> Recipe:
    return Recipe(
        optimizer="adamw", lr=1e-2, weight_decay=0.0, epochs=2, iters_per_epoch=3, warmup_epochs=0,
        sampler="pk", num_identities=4, num_instances=2, input_size=(32, 16), pad=2,
    )  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def six_head_method():
    list_methods()
    spec = MethodSpec(
        name=METHOD, family="AT-ReID", summary="test", build=lambda labels, p, w=None: SixHeads(labels), recipe=_recipe
    )
    register_method(spec)
    yield
    unregister_method(METHOD)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def data(engine_data: tuple[Path, Path, Path]) -> BenchData:
    """The suite's small AT-USTC-like set (16 identities), built once per session."""
    root, table, split = engine_data
    return user_data(table, split, root)


@pytest.fixture(scope="module")
def targets(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Target]:
    domains = parse_domains("market1501,prcc", "--cross-domain")
    return prepare_targets(domains, tmp_path_factory.mktemp("datasets"), cache=cache, progress=False)


def _mtimes(run: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (run / "eval").iterdir()}


@pytest.mark.slow
def test_runs_are_scored_zero_shot_with_the_tasks_head(data, targets, tmp_path: Path) -> None:
    from atustc.engine import embed_run
    from atustc.evaluate import evaluate
    from atustc.protocol import load_protocol
    from atustc.split import load_split

    out = tmp_path / "runs"
    CALLS.clear()
    in_domain = replace(targets[0], name="atustc")  # the training dataset itself: skipped
    outcomes = run_bench([METHOD], data=data, out=out, progress=False, cross_domain=[*targets, in_domain])
    run = outcomes[0].run_dir
    assert outcomes[0].state == "finished" and CALLS["loss"] == 6
    bench = json.loads((out / "bench.json").read_text())
    assert [t["dataset"] for t in bench["cross_domain"]] == ["market1501", "prcc"]
    assert RunFolder(run).xd_datasets("last") == ["market1501", "prcc"]
    for target, head, other in zip(targets, ("DT-ST", "DT-LT"), ("DT-LT", "DT-ST"), strict=True):
        record = json.loads((run / "eval" / f"xd-{target.name}@last.json").read_text())
        assert record["cross_domain"]["head"] == head and record["cross_domain"]["synthetic"]
        assert record["provenance"]["table_hash"] == target.data.table_hash
        assert record["provenance"]["checkpoint"] == "last" and record["protocol"] == target.name
        test = load_split(target.data.split_dir).test
        feats = embed_run(run, test, target.data.root, checkpoint="last", progress=False)
        protocol = load_protocol(target.protocol)
        assert record["scenarios"] == evaluate(protocol, test, one_head(feats, head)).to_dict()["scenarios"]
        assert record["scenarios"] != evaluate(protocol, test, one_head(feats, other)).to_dict()["scenarios"]
    row = pd.read_csv(io.StringIO(to_csv(load_leaderboard(out)))).iloc[0]
    prcc = json.loads((run / "eval" / "xd-prcc@last.json").read_text())["scenarios"]["clothes-change"]
    assert row["XD-prcc_R1_mean"] == prcc["R1"] and row["xd_avg_over"] == "market1501;prcc"

    # a second bench reuses everything; a lost cross-domain file is scored again, without training
    before = _mtimes(run)
    assert run_bench([METHOD], data=data, out=out, progress=False, cross_domain=targets)[0].action == "reused"
    assert _mtimes(run) == before
    (run / "eval" / "xd-prcc@last.json").unlink()
    again = run_bench([METHOD], data=data, out=out, progress=False, cross_domain=targets)[0]
    assert again.action == "scored" and CALLS["loss"] == 6
    after = _mtimes(run)
    assert after["atustc@last.json"] == before["atustc@last.json"] and (run / "eval" / "xd-prcc@last.json").is_file()


@pytest.mark.slow
def test_a_cross_domain_failure_leaves_the_trained_run_finished(data, targets, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run_bench([METHOD], data=data, out=out, progress=False)  # trained, no cross-domain yet
    calls = CALLS["loss"]
    broken = replace(targets[0], data=replace(targets[0].data, root=tmp_path / "gone"))
    outcome = run_bench([METHOD], data=data, out=out, progress=False, cross_domain=[broken])[0]
    assert outcome.state == "failed" and outcome.error.startswith("cross-domain market1501: ")
    assert "gone" in outcome.error and outcome.action == "scored"
    assert json.loads((outcome.run_dir / "status.json").read_text())["state"] == "finished"
    again = run_bench([METHOD], data=data, out=out, progress=False, cross_domain=targets[:1])[0]
    assert (again.state, again.action) == ("finished", "scored") and CALLS["loss"] == calls  # never retrained


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cross-domain", "nope"], "--cross-domain: unknown dataset 'nope'"),
        (["--cross-domain", "prcc=/no/such"], "--cross-domain prcc=/no/such: /no/such not found"),
        (["--cross-domain", "prcc,,ltcc"], "--cross-domain: malformed list"),
        (["--train-on", "msmt17", "--table", "t.parquet"], "--train-on replaces --table"),
        (["--train-on", "msmt17"], "--train-on needs --cross-domain"),
        (["--train-on", "msmt17=", "--cross-domain", "prcc"], "--train-on: malformed entry 'msmt17='"),
    ],
)
def test_cli_option_errors_come_before_any_training(tmp_path, capsys, extra, message) -> None:
    from atustc.cli import main

    out = tmp_path / "runs"
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--methods", METHOD, "--out", str(out), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.slow
def test_cli_scores_on_every_miniature_and_runs_table1(cache: Path, tmp_path: Path, capsys) -> None:
    from atustc.cli import main

    out = tmp_path / "runs"
    base = ["bench", "--methods", METHOD, "--synth-size", "test", "--cache", str(cache), "--no-progress"]
    main([*base, "--out", str(out), "--cross-domain", "synth"])
    run = out / f"{METHOD}-tiny-s0"
    assert (run / "eval").is_dir()
    assert RunFolder(run).xd_datasets("last") == sorted(miniature_datasets())
    header = to_csv(load_leaderboard(out)).splitlines()[0]
    assert all(f"XD-{name}_R1_mean" in header for name in miniature_datasets())
    capsys.readouterr()

    t1 = tmp_path / "t1"
    main(
        [*base, "--out", str(t1), "--seeds", "0,1", "--train-on", "msmt17,atustc", "--cross-domain", "market1501,prcc"]
    )
    printed = capsys.readouterr().out
    assert "| Method | Train \\ Test | Market | PRCC | AVG |" in printed
    assert "| xd-six | MSMT17 |" in printed and "| xd-six | AT-USTC |" in printed
    assert sorted(p.name for p in t1.iterdir()) == ["atustc", "msmt17"]  # OUT/<training dataset>/
    main(["leaderboard", "--runs", str(t1), "--layout", "table1", "--format", "csv"])
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(frame["train"]) == ["msmt17", "atustc"] and list(frame["n_runs"]) == [2, 2]
    assert frame["AVG_R1_mean"].notna().all() and frame["AVG_R1_std"].notna().all()
