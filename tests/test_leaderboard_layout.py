"""Leaderboard columns built from a protocol's scenarios and aggregates (any protocol, not only Table 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atustc.bench.board_render import to_markdown
from atustc.bench.layout import build_layout, short_label
from atustc.bench.leaderboard import METRICS, load_leaderboard
from atustc.errors import AtustcError
from run_helpers import provenance_record

MIXED_GROUPS = ("Daytime", "Nighttime", "All-day", "Short-term", "Long-term", "Anytime")
SIX = ("DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT")


def block(v: float, valid: int = 10) -> dict:
    return {"R1": v, "R5": v, "R10": v, "R20": v, "mAP": v / 2, "mINP": v / 4, "valid_queries": valid}


def run_on(root: Path, name: str, protocols: dict | None, results: dict[str, dict]) -> Path:
    run = root / name
    (run / "eval").mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished", "method": name, "preset": "tiny", "seed": 0}))
    config = {"method": name, "family": "Tr-ReID"} | ({"protocols": protocols} if protocols else {})
    (run / "config.json").write_text(json.dumps(config))
    (run / "manifest.json").write_text(json.dumps({"table_hash": name}))
    for proto, result in results.items():
        prov = provenance_record(proto) if proto != "nope" else {"checkpoint": "last"}  # "nope": an unknown protocol
        (run / "eval" / f"{proto}@last.json").write_text(json.dumps({**result, "provenance": prov}))
    return run


def test_atustc_layout_is_table_4():
    lay = build_layout(("atustc", "atustc-mixed"))
    assert list(lay.groups) == ["Any-Time", *SIX, "Mixed-Anytime"]
    assert lay.metrics + ("params", "train_time_s", "images_per_s", "step_time_s", "step_cpu_s") == METRICS
    assert [(c.group, c.label) for c in lay.display[-3:]] == [
        ("Any-Time", "mINP"),
        ("Mixed Anytime", "R1"),
        ("Mixed Anytime", "mAP"),
    ]
    assert short_label("ltcc", "ltcc:official") == "Official" and short_label("a", "market1501") == "Market1501"


def test_another_protocol_builds_its_own_columns(tmp_path):
    """A run scored on atustc-mixed alone: its aggregates then its scenarios; no 'scenario(s) missing'."""
    scen = {s: block(0.1 * (i + 1), valid=i + 1) for i, s in enumerate(SIX)}
    summary = {g: block(0.5) for g in MIXED_GROUPS[:-1]}  # Anytime missing: recomputed, weighted by valid queries
    run_on(
        tmp_path,
        "mixedonly",
        {"default": "atustc-mixed", "scored": ["atustc-mixed"], "validation": "atustc-mixed"},
        {"atustc-mixed": {"protocol": "atustc-mixed", "scenarios": scen, "summary": summary}},
    )
    board = load_leaderboard(tmp_path)
    row = board.frame.iloc[0]
    assert row["status"] == "finished"
    assert row["Daytime_R1_mean"] == 0.5 and row["AD-LT_mAP_mean"] == pytest.approx(0.3)
    expect = sum(0.1 * (i + 1) * (i + 1) for i in range(6)) / 21
    assert row["Anytime_R1_mean"] == pytest.approx(expect, abs=1e-15)
    cols = [c for c in board.frame.columns if c.endswith("_R1_mean")]
    assert cols == [f"{g}_R1_mean" for g in (*MIXED_GROUPS, *SIX)]
    header = to_markdown(board).splitlines()[0]
    assert "Daytime R1" in header and "Daytime mINP" in header and "Any-Time" not in header


def test_runs_on_different_protocols_share_one_table(tmp_path):
    scen = {s: block(0.4) for s in SIX}
    run_on(tmp_path, "a", None, {"atustc": {"scenarios": scen, "summary": {"Any-Time": block(0.4)}}})
    run_on(
        tmp_path,
        "b",
        {"default": "atustc-mixed", "scored": ["atustc-mixed"], "validation": "atustc-mixed"},
        {"atustc-mixed": {"scenarios": scen, "summary": {g: block(0.2) for g in MIXED_GROUPS}}},
    )
    frame = load_leaderboard(tmp_path).frame.set_index("method")
    assert (
        frame.loc["a", "Any-Time_R1_mean"] == 0.4
        and frame.loc["a", "Daytime_R1_mean"] != frame.loc["a", "Daytime_R1_mean"]
    )
    assert frame.loc["b", "Anytime_R1_mean"] == 0.2 and frame.loc["b", "DT-ST_R1_mean"] == 0.4


@pytest.mark.parametrize(
    ("protocols", "results", "match"),
    [
        (
            {"default": "atustc-mixed", "scored": ["atustc-mixed"]},
            {"atustc-mixed": {"scenarios": {}}},
            "scenario\\(s\\) DT-ST, DT-LT, NT-ST, NT-LT, AD-ST, AD-LT missing",
        ),
        ({"default": "nope", "scored": ["nope"]}, {"nope": {"scenarios": {}}}, "unknown protocol 'nope'"),
        ({"default": "atustc", "scored": ["x"]}, {}, "'scored' must start with the default"),
    ],
)
def test_bad_records(tmp_path, protocols, results, match):
    run_on(tmp_path, "r", protocols, results)
    with pytest.raises(AtustcError, match=match):
        load_leaderboard(tmp_path)


def test_missing_default_eval_is_not_evaluated(tmp_path):
    run_on(tmp_path, "r", {"default": "atustc-mixed", "scored": ["atustc-mixed"]}, {})
    board = load_leaderboard(tmp_path)
    assert board.others[0].state == "not-evaluated" and board.others[0].error == "no eval/atustc-mixed@last.json"
