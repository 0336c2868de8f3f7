"""Cross-domain scoring pieces without training: heads per task, eval file names, list parsing,
the leaderboard's cross-domain block and the Table 1 matrix on hand-made run folders.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atustc.bench.board_render import to_csv, to_markdown
from atustc.bench.crossdomain import headline_of, miniature_datasets, one_head, parse_domains, zero_shot_head
from atustc.bench.leaderboard import CSV_COLUMNS, collect_runs, load_leaderboard
from atustc.bench.table1 import render_table1, table1_frame
from atustc.datasets import get_dataset, list_datasets
from atustc.datasets._registry import TASKS
from atustc.errors import AtustcError
from atustc.features import Features
from atustc.runfolder import RunFolder
from atustc.scenarios import SCENARIOS
from run_helpers import provenance_record

SIX = SCENARIOS


@pytest.mark.parametrize(
    ("task", "heads", "want"),
    [
        ("tr", SIX, "DT-ST"),
        ("cc", SIX, "DT-LT"),
        ("vi", SIX, "AD-ST"),
        ("at", SIX, None),  # AT-USTC: each scenario its own head
        ("tr", ("global",), "global"),
        ("vi", ("global",), "global"),
        ("at", ("global",), "global"),
    ],
)
def test_zero_shot_head_follows_the_task(task, heads, want) -> None:
    assert zero_shot_head(task, heads) == want


def test_a_multi_head_model_without_the_tasks_head_is_refused() -> None:
    with pytest.raises(AtustcError, match="heads are a, b; a visible-infrared dataset is scored with AD-ST"):
        zero_shot_head("vi", ("a", "b"))


def test_one_head_keeps_that_column_as_a_single_head_set() -> None:
    feat = np.arange(2 * 6 * 3, dtype=np.float32).reshape(2, 6, 3)
    f = one_head(Features(relpath=np.array(["a", "b"]), heads=SIX, feat=feat), "DT-LT")
    assert f.heads == ("DT-LT",) and np.array_equal(f.feat[:, 0], feat[:, 1])
    assert f.head_index("DT-ST") == 0  # a single-head set serves every scenario's head name


EXPECTED_TASKS = {
    "atustc": "at",
    "market1501": "tr",
    "cuhk03": "tr",
    "msmt17": "tr",
    "prcc": "cc",
    "ltcc": "cc",
    "deepchange": "cc",
}


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_has_a_task_and_a_headline_of_its_protocol(name: str) -> None:
    from atustc.protocol import load_protocol

    spec = get_dataset(name)
    assert spec.task in TASKS
    if name in EXPECTED_TASKS:
        assert spec.task == EXPECTED_TASKS[name]
    headline = headline_of(name, spec.headline, load_protocol(spec.protocol))
    want = {"atustc": ("summary", "Any-Time"), "prcc": ("scenarios", "clothes-change")}
    want["ltcc"] = want["prcc"]
    if name in want:
        assert (headline["kind"], headline["name"]) == want[name]


def test_headline_must_name_a_scenario() -> None:
    from atustc.protocol import load_protocol

    with pytest.raises(AtustcError, match="headline 'cc' is not a scenario of prcc \\(same-clothes, clothes-change\\)"):
        headline_of("prcc", "cc", load_protocol("prcc"))


def test_xd_eval_files_are_named_and_listed_per_checkpoint(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "r")
    assert run.xd_eval_file("prcc", "last") == tmp_path / "r" / "eval" / "xd-prcc@last.json"
    assert run.xd_datasets("last") == []
    run.eval_dir.mkdir(parents=True)
    for name in [
        "xd-prcc@last.json",
        "xd-sysu-mm01@last.json",
        "xd-ltcc@best.json",
        "xd-prcc@last.per_query.parquet",
        "xd-prcc@last.rerank.json",
        "atustc@last.json",
    ]:
        (run.eval_dir / name).write_text("{}")
    assert run.xd_datasets("last") == ["prcc", "sysu-mm01"] and run.xd_datasets("best") == ["ltcc"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "--cross-domain: malformed list ''"),
        ("market1501,", "--cross-domain: malformed list 'market1501,'"),
        ("prcc=", "--cross-domain: malformed entry 'prcc='"),
        ("=x", "--cross-domain: malformed entry '=x'"),
        ("market", "--cross-domain: unknown dataset 'market'; did you mean market1501"),
        ("prcc=/no/such/dir", "--cross-domain prcc=/no/such/dir: /no/such/dir not found"),
        ("prcc,ltcc,prcc", "--cross-domain: dataset\\(s\\) named twice: prcc"),
    ],
)
def test_bad_lists_are_refused_in_one_line(text: str, match: str) -> None:
    with pytest.raises(AtustcError, match=match):
        parse_domains(text, "--cross-domain")


def test_synth_stands_for_every_registered_miniature(tmp_path: Path) -> None:
    from atustc.synth.layouts import LAYOUTS

    minis = miniature_datasets()
    assert set(minis) == set(LAYOUTS) & set(list_datasets()) and "atustc" not in minis
    assert {"market1501", "cuhk03", "msmt17", "prcc", "ltcc", "deepchange"} <= set(minis)
    got = parse_domains(f"synth,atustc={tmp_path}", "--train-on")
    assert [(d.name, d.source) for d in got] == [*((m, None) for m in minis), ("atustc", str(tmp_path))]


# ---------------------------------------------------------------- hand-made run folders


def _block(r1: float, m_ap: float) -> dict:
    return {"R1": r1, "R5": 1.0, "R10": 1.0, "R20": 1.0, "mAP": m_ap, "mINP": m_ap / 2, "valid_queries": 10}


XD_PROTOCOL = {
    "market1501": "market1501",
    "cuhk03": "cuhk03",
    "prcc": "prcc",
    "ltcc": "ltcc",
    "msmt17": "msmt17",
    "sysu-mm01": "sysu-mm01",
}


def write_run(root: Path, train: str, seed: int, xd: dict[str, tuple[float, float]], method: str = "m") -> Path:
    """A finished run trained on ``train`` (msmt17-style protocol) with cross-domain evals ``{dataset: (R1, mAP)}``."""
    run = root / train / f"{method}-tiny-s{seed}"
    (run / "eval").mkdir(parents=True)
    status = {"state": "finished", "method": method, "preset": "tiny", "seed": seed, "params": 10}
    (run / "status.json").write_text(json.dumps(status))
    protocols = {"default": "msmt17", "scored": ["msmt17"], "validation": "msmt17"}
    config = {"method": method, "family": "Tr-ReID", "preset": "tiny", "seed": seed, "dataset": train}
    (run / "config.json").write_text(json.dumps({**config, "protocols": protocols}))
    (run / "manifest.json").write_text(json.dumps({"table_hash": f"hash-{train}", "split_hash": "s"}))
    main = {"protocol": "msmt17", "scenarios": {"single-query": _block(0.9, 0.8)}, "summary": {}}
    (run / "eval" / "msmt17@last.json").write_text(json.dumps({**main, "provenance": provenance_record("msmt17")}))
    for dataset, (r1, m_ap) in xd.items():
        name = XD_PROTOCOL.get(dataset, dataset)
        if dataset == "prcc":  # the headline is clothes-change; same-clothes must not be read
            scenarios = {"same-clothes": _block(0.99, 0.99), "clothes-change": _block(r1, m_ap)}
            headline = {"kind": "scenarios", "name": "clothes-change"}
        else:
            scenarios = {"single-query": _block(r1, m_ap)}
            headline = {"kind": "scenarios", "name": "single-query"}
        prov = provenance_record(name) if dataset in XD_PROTOCOL else {**provenance_record("msmt17"), "protocol": name}
        record = {"protocol": name, "scenarios": scenarios, "summary": {}, "provenance": prov}
        record["cross_domain"] = {"dataset": dataset, "task": "tr", "headline": headline, "head": "global"}
        (run / "eval" / f"xd-{dataset}@last.json").write_text(json.dumps(record))
    return run


def test_leaderboard_cross_domain_block_means_and_partial_average(tmp_path: Path) -> None:
    write_run(tmp_path, "msmt17", 0, {"ltcc": (0.2, 0.1), "market1501": (0.5, 0.3), "prcc": (0.4, 0.2)})
    write_run(tmp_path, "msmt17", 1, {"ltcc": (0.4, 0.3), "market1501": (0.7, 0.5), "prcc": (0.6, 0.2)})
    board = load_leaderboard(tmp_path)
    text = to_csv(board)
    row = pd.read_csv(io.StringIO(text)).iloc[0]
    header = text.splitlines()[0].split(",")
    xd_cols = [c for c in header if c.startswith("XD-")]
    assert xd_cols[:6] == [f"XD-market1501_{m}_{a}" for m in ("R1", "mAP", "mINP") for a in ("mean", "std")]
    assert [c.rsplit("_", 2)[0] for c in xd_cols[:18:6]] == ["XD-market1501", "XD-prcc", "XD-ltcc"]  # the paper's order
    assert xd_cols[-4:] == ["XD-Avg_R1_mean", "XD-Avg_R1_std", "XD-Avg_mAP_mean", "XD-Avg_mAP_std"]
    assert header.index("xd_avg_over") == header.index("cost_flag") + 1 and row["xd_avg_over"] == "market1501;prcc;ltcc"
    assert row["XD-market1501_R1_mean"] == pytest.approx(0.6) and row["XD-market1501_R1_std"] == pytest.approx(
        0.2 / math.sqrt(2)
    )
    assert row["XD-prcc_R1_mean"] == pytest.approx(0.5)  # clothes-change, not same-clothes (0.99)
    assert row["XD-prcc_mINP_mean"] == pytest.approx(0.1)
    # per run: (0.5 + 0.4 + 0.2) / 3 and (0.7 + 0.6 + 0.4) / 3; then mean and std over the two seeds
    avgs = [1.1 / 3, 1.7 / 3]
    assert row["XD-Avg_R1_mean"] == pytest.approx(sum(avgs) / 2)
    assert row["XD-Avg_R1_std"] == pytest.approx(abs(avgs[1] - avgs[0]) / math.sqrt(2))
    assert row["XD-Avg_mAP_mean"] == pytest.approx((0.6 / 3 + 1.0 / 3) / 2)
    md = to_markdown(board)
    assert "XD Market R1" in md and "XD Avg* R1" in md
    assert "* XD Avg: mean over Market, PRCC, LTCC (the paper's average also has CUHK03, SYSU)" in md


def test_cross_domain_average_is_over_the_papers_five_when_all_are_present(tmp_path: Path) -> None:
    five = {"market1501": (0.5, 0.4), "cuhk03": (0.1, 0.1), "sysu-mm01": (0.2, 0.3), "prcc": (0.3, 0.2)}
    write_run(tmp_path, "msmt17", 0, {**five, "ltcc": (0.4, 0.5), "msmt17": (0.9, 0.9)})
    board = load_leaderboard(tmp_path)
    row = board.frame.iloc[0]
    assert row["xd_avg_over"] == "market1501;cuhk03;sysu-mm01;prcc;ltcc"
    assert row["XD-Avg_R1_mean"] == pytest.approx(1.5 / 5) and row["XD-Avg_mAP_mean"] == pytest.approx(1.5 / 5)
    assert row["XD-msmt17_R1_mean"] == pytest.approx(0.9)  # shown, but not averaged
    assert board.notes == () and "XD Avg R1" in to_markdown(board) and "XD SYSU R1" in to_markdown(board)


def test_runs_without_cross_domain_evals_keep_the_columns(tmp_path: Path) -> None:
    from atustc.bench.layout import build_layout
    from atustc.bench.leaderboard import csv_columns, metric_keys

    write_run(tmp_path, "msmt17", 0, {})
    board = load_leaderboard(tmp_path)
    assert list(board.frame.columns) == list(csv_columns(metric_keys([build_layout(("msmt17",))])))
    assert "xd_avg_over" not in CSV_COLUMNS and board.notes == ()


def test_a_cross_domain_eval_of_another_checkpoint_is_refused(tmp_path: Path) -> None:
    run = write_run(tmp_path, "msmt17", 0, {"market1501": (0.5, 0.3)})
    path = run / "eval" / "xd-market1501@last.json"
    record = json.loads(path.read_text())
    record["provenance"]["checkpoint"] = "best"
    path.write_text(json.dumps(record))
    with pytest.raises(AtustcError, match="xd-market1501@last.json: provenance says checkpoint 'best'"):
        load_leaderboard(tmp_path)


def test_table1_matrix_with_avg_and_mean_std_over_seeds(tmp_path: Path) -> None:
    write_run(tmp_path, "atustc", 0, {"market1501": (0.6, 0.4), "prcc": (0.4, 0.3)})
    write_run(tmp_path, "msmt17", 0, {"market1501": (0.5, 0.3), "prcc": (0.2, 0.1)})
    write_run(tmp_path, "msmt17", 1, {"market1501": (0.3, 0.2), "prcc": (0.4, 0.1)})
    frame = table1_frame(collect_runs(tmp_path))
    assert list(frame.columns[:8]) == [
        "method",
        "preset",
        "train",
        "data_hash",
        "checkpoint",
        "seeds",
        "n_runs",
        "avg_over",
    ]
    assert list(frame.columns[8:12]) == [
        "market1501_R1_mean",
        "market1501_R1_std",
        "market1501_mAP_mean",
        "market1501_mAP_std",
    ]
    assert list(frame.columns[-4:]) == ["AVG_R1_mean", "AVG_R1_std", "AVG_mAP_mean", "AVG_mAP_std"]
    assert list(frame["train"]) == ["msmt17", "atustc"]  # AT-USTC last, as in the paper
    msmt, at = frame.iloc[0], frame.iloc[1]
    assert (msmt["seeds"], msmt["n_runs"], msmt["avg_over"]) == ("0;1", 2, "market1501;prcc")
    assert msmt["market1501_R1_mean"] == pytest.approx(0.4) and msmt["market1501_R1_std"] == pytest.approx(
        0.2 / math.sqrt(2)
    )
    # AVG per run: (0.5 + 0.2) / 2 = 0.35 and (0.3 + 0.4) / 2 = 0.35: mean 0.35, std 0
    assert msmt["AVG_R1_mean"] == pytest.approx(0.35) and msmt["AVG_R1_std"] == pytest.approx(0.0)
    assert at["AVG_R1_mean"] == pytest.approx(0.5) and math.isnan(at["AVG_R1_std"])
    assert at["AVG_mAP_mean"] == pytest.approx(0.35)
    md = render_table1(frame, "md")
    assert "| Method | Train \\ Test | Market | PRCC | AVG |" in md
    assert "| m | MSMT17 | 40.00 ± 14.14 | 30.00 ± 14.14 | 35.00 ± 0.00 |" in md
    assert "| m | AT-USTC | **60.00** | **40.00** | **50.00** |" in md
    latex = render_table1(frame, "latex")
    assert latex.count(r"\begin{tabular}") == 2 and r"40.00 $\pm$ 14.14" in latex and r"\textbf{60.00}" in latex
    back = pd.read_csv(io.StringIO(render_table1(frame, "csv")))
    assert back["AVG_R1_mean"].tolist() == pytest.approx([0.35, 0.5])
    with pytest.raises(AtustcError, match="--format must be one of csv, md, latex"):
        render_table1(frame, "html")


def test_table1_says_when_a_rows_avg_is_partial(tmp_path: Path) -> None:
    write_run(tmp_path, "atustc", 0, {"market1501": (0.6, 0.4), "prcc": (0.4, 0.3)})
    write_run(tmp_path, "msmt17", 0, {"market1501": (0.5, 0.3)})
    frame = table1_frame(collect_runs(tmp_path))
    assert list(frame["avg_over"]) == ["market1501", "market1501;prcc"]
    assert frame.iloc[0]["AVG_R1_mean"] == pytest.approx(0.5) and math.isnan(frame.iloc[0]["prcc_R1_mean"])
    md = render_table1(frame, "md")
    assert (
        "| m | MSMT17 | 50.00 | - | **50.00** |" in md
    )  # a tie: both bold and "AVG of m trained on MSMT17 is over Market only." in md


def test_table1_without_cross_domain_evals_is_one_line(tmp_path: Path) -> None:
    write_run(tmp_path, "msmt17", 0, {})
    with pytest.raises(AtustcError, match="no finished run has cross-domain evals"):
        table1_frame(collect_runs(tmp_path))


def test_leaderboard_cli_table1_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from atustc.cli import main

    write_run(tmp_path, "msmt17", 0, {"market1501": (0.5, 0.3)})
    main(["leaderboard", "--runs", str(tmp_path), "--layout", "table1"])
    assert "| m | MSMT17 | **50.00** | **50.00** |" in capsys.readouterr().out
    main(["leaderboard", "--runs", str(tmp_path), "--layout", "table1", "-o", str(tmp_path / "t1.csv")])
    assert pd.read_csv(tmp_path / "t1.csv")["market1501_R1_mean"].tolist() == [0.5]
    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "--runs", str(tmp_path), "--layout", "table1", "--compare", "a,b"])
    assert exc.value.code == 2 and "--compare works with --layout table4 only" in capsys.readouterr().err


def test_dataset_data_from_a_root_a_table_or_a_split(tmp_path: Path) -> None:
    from atustc.bench.data import dataset_data
    from atustc.synth.layouts import write_layout

    root = tmp_path / "market"
    write_layout(root, "market1501")
    folder = tmp_path / "datasets"
    data = dataset_data("market1501", str(root), folder, option="--cross-domain")
    assert data.table.parent == folder / f"market1501-{data.table_hash}" and data.root == root.resolve()
    assert (data.split_dir / "split.json").is_file() and not data.synthetic and data.dataset == "market1501"
    stamp = data.table.stat().st_mtime_ns
    assert dataset_data("market1501", str(root), folder, option="--cross-domain") == data  # re-indexed, reused
    assert data.table.stat().st_mtime_ns == stamp
    from_table = dataset_data("market1501", str(data.table), tmp_path / "t", option="--cross-domain")
    assert from_table.table_hash == data.table_hash and from_table.root == root.resolve()
    from_split = dataset_data("market1501", str(data.split_dir), tmp_path / "s", option="--cross-domain")
    assert from_split.split_dir == data.split_dir and not (tmp_path / "s").exists()
    for source, match in [
        (data.split_dir, "--cross-domain prcc=.*split: split .* is a split of market1501, not prcc"),
        (root / "query" / next(iter(sorted(p.name for p in (root / "query").iterdir()))), "expected a dataset root"),
        (root, "--cross-domain prcc=.*market"),  # a Market tree is no PRCC root
    ]:
        with pytest.raises(AtustcError, match=match):
            dataset_data("prcc", str(source), folder, option="--cross-domain")
