"""Any indexed dataset trains: single-modality data, heads without data, the dataset's own validation.

Fast: :func:`atustc.engine.headdata.heads_without_data` and
:func:`atustc.engine.samplers.choose_sampler` on hand-made labels, model selection's row, and
MSMT17's train / train+val choice at ``atustc split``. Slow (a few seconds each): `synth
--layout` -> `index` -> `split` -> `train` for Uni-AT, TransReID and BoT on the Market-1501 and
PRCC miniatures at a two-iteration budget.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from atustc.cli import main
from atustc.engine.headdata import heads_without_data
from atustc.engine.samplers import choose_sampler
from atustc.engine.trainer import selection_row
from atustc.errors import AtustcError
from atustc.scenarios import SCENARIOS
from atustc.split import make_split
from atustc.synth.layouts import write_layout
from tests.reid_standin import index_root

NO_IR = "no IR train images (NT heads learn from IR images)"
NO_BOTH = "no identity with both RGB and IR train images (no cross-modality pairs)"
NO_CHANGE = "no identity with train images in two outfits (no clothes changes)"


def test_heads_without_data_hand_made_cases():
    pid = np.array([1, 1, 2, 2])
    rgb = np.zeros(4, dtype=np.int64)
    # RGB only, one outfit per person (Market-1501): only DT-ST is taught
    assert heads_without_data(SCENARIOS, pid, rgb, np.full(4, -1)) == {
        "DT-LT": NO_CHANGE,
        "NT-ST": NO_IR,
        "NT-LT": f"{NO_IR}; {NO_CHANGE}",
        "AD-ST": NO_BOTH,
        "AD-LT": f"{NO_BOTH}; {NO_CHANGE}",
    }
    # RGB only with clothes changes (PRCC): the LT heads learn, NT and AD do not
    assert heads_without_data(SCENARIOS, pid, rgb, np.array([1, 2, 1, 1])) == {
        "NT-ST": NO_IR,
        "NT-LT": NO_IR,
        "AD-ST": NO_BOTH,
        "AD-LT": NO_BOTH,
    }
    # both modalities, but never for the same person: AD heads have no cross-modality pair
    got = heads_without_data(SCENARIOS, pid, np.array([0, 0, 1, 1]), np.array([1, 2, 1, 2]))
    assert got == {"AD-ST": NO_BOTH, "AD-LT": NO_BOTH}
    # IR only: the DT heads get nothing; a head not named after a scenario is not judged
    got = heads_without_data(("DT-ST", "global"), pid, np.ones(4, dtype=np.int64), np.array([1, 2, 1, 2]))
    assert got == {"DT-ST": "no RGB train images (DT heads learn from RGB images)"}
    # AT-USTC-like: every head is taught
    assert heads_without_data(SCENARIOS, pid, np.array([0, 1, 0, 1]), np.array([1, 2, 1, 2])) == {}


def test_choose_sampler_falls_back_to_pk_on_single_modality_only():
    rgb, ir, mixed = np.zeros(6, dtype=np.int64), np.ones(6, dtype=np.int64), np.array([0, 1] * 3)
    assert choose_sampler("pk_modality", rgb) == (
        "pk",
        "sampler pk_modality -> pk: the train table has RGB images only",
    )
    assert choose_sampler("pk_modality", ir) == ("pk", "sampler pk_modality -> pk: the train table has IR images only")
    assert choose_sampler("pk_modality", mixed) == ("pk_modality", None)
    assert choose_sampler("pk_modality", rgb, explicit=True) == ("pk_modality", None)  # BatchPlan then refuses it
    assert choose_sampler("random", rgb) == ("random", None)


def test_selection_reads_the_last_aggregate_else_the_last_scenario():
    assert selection_row({"protocol": "a", "scenarios": {"x": {}, "y": {}}, "summary": {"A": {}, "B": {}}}) == (
        "summary",
        "B",
    )
    assert selection_row({"protocol": "p", "scenarios": {"same": {}, "cc": {}}, "summary": {}}) == ("scenarios", "cc")
    with pytest.raises(AtustcError, match="validation protocol e: no row to select"):
        selection_row({"protocol": "e", "scenarios": {}, "summary": {}})


def test_msmt17_train_or_train_plus_val_is_recorded(tmp_path):
    write_layout(tmp_path / "msmt", "msmt17", seed=0)
    table = index_root("msmt17", tmp_path / "msmt")
    n_val = int((table["split"] == "val").sum())
    assert n_val > 0
    kept = make_split(table)
    both = make_split(table, train_set="train+val")
    assert kept.info["train_set"] == "train" and both.info["train_set"] == "train+val"
    assert len(both.train) == len(kept.train) + n_val and len(kept.val) == n_val
    assert len(both.val) == 0 and len(both.val_protocol) == 0
    assert both.info["source_table_hash"] == kept.info["source_table_hash"]  # made from the same table
    assert sorted(both.train["relpath"]) == sorted([*kept.train["relpath"], *kept.val["relpath"]])
    assert both.test["relpath"].tolist() == kept.test["relpath"].tolist()


@pytest.mark.slow
def test_train_set_option_from_the_cli(tmp_path, capsys):
    write_layout(tmp_path / "msmt", "msmt17", seed=0)
    write_layout(tmp_path / "market", "market1501", seed=0)
    for name, fmt in (("msmt", "msmt17"), ("market", "market1501")):
        main(["index", str(tmp_path / name), "--format", fmt, "-o", str(tmp_path / f"{name}.parquet"), "--quiet"])
    main(["split", str(tmp_path / "msmt.parquet"), "-o", str(tmp_path / "sp"), "--train-set", "train+val"])
    info = json.loads((tmp_path / "sp" / "split.json").read_text())
    assert info["train_set"] == "train+val" and info["summary"]["images"]["val"] == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["split", str(tmp_path / "market.parquet"), "-o", str(tmp_path / "m"), "--train-set", "train+val"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert "--train-set train+val: dataset market1501 has no release validation set" in err[0]
    assert not (tmp_path / "m").exists()


# ---- end to end: synth -> index -> split -> train on single-modality miniatures -------------

BUDGET = {"epochs": 1, "iters_per_epoch": 2, "warmup_epochs": 0, "num_workers": 0, "num_identities": 4}
#: Uni-AT's heads without data on each miniature (Market-1501: RGB, no clothes; PRCC: RGB, two outfits)
UNIAT_MISSING = {
    "market1501": {"DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT"},
    "prcc": {"NT-ST", "NT-LT", "AD-ST", "AD-LT"},
}


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("reid-train")
    out = {}
    for name in ("market1501", "prcc"):
        write_layout(base / name, name, seed=0)
        table = base / f"{name}.parquet"
        main(["index", str(base / name), "--format", name, "-o", str(table), "--quiet"])
        main(["split", str(table), "-o", str(base / f"{name}-split")])
        out[name] = (table, base / f"{name}-split")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["market1501", "prcc"])
@pytest.mark.parametrize("method", ["uniat", "transreid", "bot"])
def test_single_modality_dataset_trains_and_reports_untaught_heads(splits, dataset, method, tmp_path, capsys):
    from atustc.engine import train_run

    table, split = splits[dataset]
    budget = {**BUDGET, "milestones": "1"} if method == "bot" else BUDGET  # BoT's steps must fit in one epoch
    run = train_run(method, table, split, "tiny", tmp_path / "run", overrides=budget, progress=False)
    status = json.loads((run / "status.json").read_text())
    config = json.loads((run / "config.json").read_text())
    err = capsys.readouterr().err
    assert status["state"] == "finished"
    assert config["recipe"]["sampler"] == "pk"  # Uni-AT's pk_modality falls back; the others use pk
    if method == "uniat":
        assert set(status["heads_without_data"]) == UNIAT_MISSING[dataset]
        assert status["data_notes"] == ["sampler pk_modality -> pk: the train table has RGB images only"]
        assert "warning: head NT-ST gets no training signal: " + NO_IR in err
        assert "warning: sampler pk_modality -> pk" in (run / "train.log").read_text()
    else:
        assert status["heads_without_data"] == {} and status["data_notes"] == []
    # validated on the dataset's own protocol (split.json), selected on its last scenario
    val = [json.loads(line)["val"] for line in (run / "metrics.jsonl").read_text().splitlines() if "val" in line]
    assert val and {v["protocol"] for v in val} == {dataset}
    last = "single-query" if dataset == "market1501" else "clothes-change"
    assert status["best"]["metric"] == f"val/{dataset}/{last}/mAP"
