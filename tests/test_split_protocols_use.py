"""The split's protocols record (split.json) drives validation, the bench's scoring and ``eval --run``'s default."""

from __future__ import annotations

import json
import shutil

import pytest

from atustc.bench.harness import BenchData, score_run
from atustc.cli import main
from atustc.engine import train_run
from engine_helpers import METHOD

MIXED = {"default": "atustc-mixed", "scored": ["atustc-mixed"], "validation": "atustc-mixed"}


@pytest.mark.slow
def test_split_protocols_choose_validation_scoring_and_eval_default(tmp_path, engine_method, engine_data):
    root, table, split = engine_data
    mixed = tmp_path / "mixed-split"
    shutil.copytree(split, mixed)
    info = json.loads((mixed / "split.json").read_text())
    (mixed / "split.json").write_text(json.dumps({**info, "protocols": MIXED}))
    sets = {"num_workers": 0, "log_every": 4, "epochs": 1}
    run = train_run(METHOD, table, mixed, "tiny", tmp_path / "run", overrides=sets, progress=False)
    legacy = train_run(METHOD, table, split, "tiny", tmp_path / "legacy", overrides=sets, progress=False)
    val = [json.loads(line)["val"] for line in (run / "metrics.jsonl").read_text().splitlines() if '"val"' in line]
    assert [v["protocol"] for v in val] == ["atustc-mixed"]
    best = json.loads((run / "status.json").read_text())["best"]
    assert best["metric"] == "val/atustc-mixed/Anytime/mAP"
    old = json.loads((legacy / "status.json").read_text())["best"]
    assert old["metric"] == "val/atustc/Any-Time/mAP"  # a split without the record: AT-USTC's

    score_run(run, BenchData(table, mixed, root, "h", synthetic=False), progress=False)
    assert sorted(p.name for p in (run / "eval").iterdir()) == [
        "atustc-mixed@last.json",
        "atustc-mixed@last.per_query.parquet",
    ]
    main(["eval", "--table", str(mixed / "table.parquet"), "--run", str(run), "--no-progress"])
    assert (run / "eval" / "atustc-mixed@best.json").is_file()
