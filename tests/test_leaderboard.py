"""The leaderboard from fabricated run folders: round-trips, mean ± std, bold, failures, formats."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from atustc.bench.board_render import latex_escape, to_csv, to_latex, to_markdown
from atustc.bench.leaderboard import (
    CSV_COLUMNS,
    METRICS,
    SCENARIOS,
    build_leaderboard,
    collect_runs,
    load_leaderboard,
)
from atustc.errors import AtustcError
from run_helpers import provenance_record


def _block(base: float) -> dict:
    return {
        "R1": base,
        "R5": min(1.0, base + 0.1),
        "R10": min(1.0, base + 0.15),
        "R20": min(1.0, base + 0.2),
        "mAP": base / 2,
        "mINP": base / 4,
        "valid_queries": 10,
    }


def make_run(
    root: Path,
    name: str,
    *,
    method: str = "uniat",
    family: str = "AT-ReID",
    seed: int = 0,
    state: str = "finished",
    error: str | None = None,
    scen: dict[str, float] | None = None,
    mixed: float | None = 0.3,
    params: int = 1_000_000,
    train_time_s: float = 100.0,
    images_per_s: float = 50.0,
    step_time_s: float | None = None,
    step_cpu_s: float | None = None,
    table_hash: str = "abcdef0123456789",
    split_hash: str = "split0",
    machine: dict | None = None,
    train_cpu_s: float | None = None,
) -> Path:
    """Write a run folder as the engine and the harness would."""
    run = root / name
    (run / "eval").mkdir(parents=True)
    status = {
        "state": state,
        "error": error,
        "method": method,
        "preset": "tiny",
        "seed": seed,
        "params": params,
        "train_time_s": train_time_s,
        "images_per_s": images_per_s,
        **({} if step_time_s is None else {"step_time_s": step_time_s}),
        **({} if step_cpu_s is None else {"step_cpu_s": step_cpu_s}),
    }
    if train_cpu_s is not None:
        status["train_cpu_s"] = train_cpu_s
    (run / "status.json").write_text(json.dumps(status))
    (run / "config.json").write_text(json.dumps({"method": method, "family": family, "preset": "tiny", "seed": seed}))
    manifest = {"seed": seed, "table_hash": table_hash, "split_hash": split_hash}
    if machine is not None:
        manifest.update(machine=machine, device={"type": "cuda" if machine.get("gpus") else "cpu"})
    (run / "manifest.json").write_text(json.dumps(manifest))
    if state == "finished":
        scen = scen or {s: 0.1 * (i + 1) for i, s in enumerate(SCENARIOS)}
        blocks = {s: _block(v) for s, v in scen.items()}
        anytime = {k: sum(b[k] for b in blocks.values()) / 6 for k in ("R1", "R5", "R10", "R20", "mAP", "mINP")}
        anytime["valid_queries"] = 60
        result = {"protocol": "atustc", "scenarios": blocks, "summary": {"Any-Time": anytime}}
        (run / "eval" / "atustc@last.json").write_text(
            json.dumps({**result, "provenance": provenance_record("atustc")})
        )
        if mixed is not None:
            names = ("Daytime", "Nighttime", "All-day", "Short-term", "Long-term", "Anytime")
            groups = {g: _block(mixed) for g in names}
            (run / "eval" / "atustc-mixed@last.json").write_text(
                json.dumps(
                    {
                        "protocol": "atustc-mixed",
                        "scenarios": blocks,
                        "summary": groups,
                        "provenance": provenance_record("atustc-mixed"),
                    }
                )
            )
    return run


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(root, "uniat-tiny-s0", seed=0, scen={s: 0.50 for s in SCENARIOS}, train_time_s=90.0)
    make_run(root, "uniat-tiny-s1", seed=1, scen={s: 0.60 for s in SCENARIOS}, mixed=0.5, train_time_s=110.0)
    make_run(
        root,
        "transreid-tiny-s0",
        method="transreid",
        family="Tr-ReID",
        scen={s: 0.1 * (i + 1) for i, s in enumerate(SCENARIOS)},
        params=3_000_000,
        images_per_s=80.0,
    )
    make_run(root, "broken-tiny-s0", method="broken", family="CC-ReID", state="failed", error="RuntimeError: boom")
    return root


def test_csv_round_trips_the_runs(runs: Path) -> None:
    board = load_leaderboard(runs)
    df = pd.read_csv(io.StringIO(board.frame.to_csv(index=False, float_format="%.17g")))
    assert tuple(df.columns) == CSV_COLUMNS
    # Paper row order: Tr-ReID, CC-ReID, ..., AT-ReID.
    assert df["method"].tolist() == ["transreid", "broken", "uniat"]
    tr = df.set_index("method").loc["transreid"]
    result = json.loads((runs / "transreid-tiny-s0" / "eval" / "atustc@last.json").read_text())
    for scen in SCENARIOS:
        for metric in ("R1", "mAP", "mINP"):
            assert tr[f"{scen}_{metric}_mean"] == result["scenarios"][scen][metric]
    assert tr["Any-Time_R1_mean"] == pytest.approx(sum(0.1 * (i + 1) for i in range(6)) / 6, abs=1e-15)
    assert tr["Any-Time_mAP_mean"] == result["summary"]["Any-Time"]["mAP"]
    assert tr["Mixed-Anytime_R1_mean"] == 0.3
    assert tr["params_mean"] == 3_000_000 and tr["images_per_s_mean"] == 80.0
    assert math.isnan(tr["DT-ST_R1_std"]) and tr["n_runs"] == 1 and str(tr["seeds"]) == "0"
    assert tr["data_hash"] == "abcdef0123456789"


def test_mean_and_sample_std_over_seeds(runs: Path) -> None:
    row = load_leaderboard(runs).frame.set_index("method").loc["uniat"]
    assert row["n_runs"] == 2 and row["seeds"] == "0;1" and row["n_splits"] == 1
    assert row["DT-ST_R1_mean"] == pytest.approx(0.55, abs=1e-15)
    # sample std of {0.5, 0.6} = 0.1 / sqrt(2)
    assert row["DT-ST_R1_std"] == pytest.approx(0.1 / math.sqrt(2), abs=1e-15)
    assert row["Any-Time_mAP_mean"] == pytest.approx(0.275, abs=1e-15)
    assert row["Mixed-Anytime_R1_mean"] == pytest.approx(0.4, abs=1e-15)
    assert row["train_time_s_mean"] == 100.0
    assert row["train_time_s_std"] == pytest.approx(math.sqrt(200.0), abs=1e-12)


def test_failed_runs_listed_not_averaged(runs: Path) -> None:
    board = load_leaderboard(runs)
    row = board.frame.set_index("method").loc["broken"]
    assert row["status"] == "failed" and row["n_runs"] == 0 and row["n_failed"] == 1
    assert "boom" in row["error"] and math.isnan(row["Any-Time_R1_mean"])
    assert [r.path.name for r in board.others] == ["broken-tiny-s0"]
    md = to_markdown(board)
    assert "| CC-ReID | broken | failed |" in md
    assert "broken-tiny-s0 (broken, seed 0): failed: RuntimeError: boom" in md


def test_unfinished_and_unscored_runs_are_not_averaged(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    make_run(root, "a", seed=0, scen={s: 0.4 for s in SCENARIOS})
    make_run(root, "b", seed=1, state="running")
    (make_run(root, "c", seed=2) / "eval" / "atustc@last.json").unlink()
    board = load_leaderboard(root)
    row = board.frame.iloc[0]
    assert row["n_runs"] == 1 and row["n_failed"] == 2 and row["DT-ST_R1_mean"] == 0.4
    assert sorted(r.state for r in board.others) == ["not-evaluated", "running"]


def test_nested_runs_of_several_splits_average(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    make_run(root / "r0", "uniat-tiny-s0", scen={s: 0.2 for s in SCENARIOS}, split_hash="a")
    make_run(root / "r1", "uniat-tiny-s0", scen={s: 0.4 for s in SCENARIOS}, split_hash="b")
    row = load_leaderboard(root).frame.iloc[0]
    assert (row["n_runs"], row["n_splits"], row["seeds"]) == (2, 2, "0;0")
    assert row["NT-LT_R1_mean"] == pytest.approx(0.3, abs=1e-15)
    assert "0,0 (2 splits)" in to_markdown(load_leaderboard(root))


def test_linked_run_folders_are_read_once_each(tmp_path: Path) -> None:
    benches = tmp_path / "benches"
    make_run(benches / "seed0", "uniat-tiny-s0", scen={s: 0.2 for s in SCENARIOS})
    make_run(benches / "seed1", "uniat-tiny-s1", seed=1, scen={s: 0.4 for s in SCENARIOS})
    gathered = tmp_path / "gathered"
    gathered.mkdir()
    (gathered / "uniat-tiny-s0").symlink_to(benches / "seed0" / "uniat-tiny-s0")
    (gathered / "uniat-tiny-s1").symlink_to(benches / "seed1" / "uniat-tiny-s1")
    (gathered / "again").symlink_to(benches / "seed1")  # a second way to the seed-1 run
    (gathered / "loop").symlink_to(gathered)  # a link cycle ends the walk, not the program
    row = load_leaderboard(gathered).frame.iloc[0]
    assert (row["n_runs"], row["seeds"]) == (2, "0;1")
    assert row["NT-LT_R1_mean"] == pytest.approx(0.3, abs=1e-15)


def test_markdown_bolds_best_per_column(runs: Path) -> None:
    md = to_markdown(load_leaderboard(runs))
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {r.split("|")[2].strip(): [c.strip() for c in r.strip("|").split("|")] for r in lines[2:]}
    col = header.index("DT-ST R1")
    assert rows["uniat"][col] == "**55.00** ± 7.07"  # mean 55 %, sample std 7.07 %
    assert rows["transreid"][col] == "10.00"
    col = header.index("AD-LT R1")  # transreid's AD-LT is 60 %, above uniat's 55 %
    assert rows["transreid"][col] == "**60.00**"
    assert rows["uniat"][col] == "55.00 ± 7.07"
    assert rows["transreid"][header.index("Cost Params")] == "3.00M"
    assert rows["uniat"][header.index("Cost Params")] == "**1.00M** ± 0.00M"  # fewer is better
    assert rows["transreid"][header.index("Cost img/s")] == "**80.0**"
    assert rows["uniat"][header.index("Seeds")] == "0,1"


def test_latex_structure(runs: Path) -> None:
    tex = to_latex(load_leaderboard(runs))
    assert tex.count(r"\begin{table}") == 1 and tex.count(r"\end{table}") == 1
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == 3
    for line in body:
        assert line.endswith(r"\\") and line.count("&") == len(spec) - 1
    header = tex.split(r"\toprule")[1].split(r"\midrule")[0]
    spans = sum(int(n) for n in re.findall(r"\\multicolumn\{(\d+)\}", header))
    first = header.strip().splitlines()[0]
    assert spans + first.count("&") + 1 - len(re.findall(r"\\multicolumn", first)) == len(spec)
    assert r"\textbf{55.00$\pm$7.07}" in tex
    assert tex.count("{") == tex.count("}")
    assert latex_escape("a_b&c%") == r"a\_b\&c\%"


def test_cli_formats_and_output(runs: Path, tmp_path: Path) -> None:
    from atustc.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["leaderboard", "--runs", str(runs), "--format", "csv"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.output))
    assert len(df) == 3 and df.set_index("method").loc["uniat", "DT-ST_R1_mean"] == pytest.approx(0.55, abs=1e-15)
    out = tmp_path / "lb.tex"
    res = runner.invoke(cli, ["leaderboard", "--runs", str(runs), "-o", str(out)])
    assert res.exit_code == 0 and out.read_text().startswith("% Requires")
    res = runner.invoke(cli, ["leaderboard", "--runs", str(runs)])
    assert res.exit_code == 0 and "leaderboard" in res.output and "transreid" in res.output
    for fmt in ("md", "latex"):
        assert runner.invoke(cli, ["leaderboard", "--runs", str(runs), "--format", fmt]).exit_code == 0
    # building the leaderboard never wrote into a run
    assert sorted(p.name for p in (runs / "uniat-tiny-s0").rglob("*")) == sorted(
        ["status.json", "config.json", "manifest.json", "eval", "atustc@last.json", "atustc-mixed@last.json"]
    )


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda root: None, "runs folder not found"),
        (lambda root: root.mkdir(), "no run folders"),
        (lambda root: (make_run(root, "x") / "status.json").write_text("{"), "not valid JSON"),
        (
            lambda root: (make_run(root, "x") / "eval" / "atustc@last.json").write_text(
                json.dumps(
                    {"scenarios": {s: _block(0.5) for s in SCENARIOS[:5]}, "provenance": provenance_record("atustc")}
                )
            ),
            "AD-LT missing",
        ),
        (
            lambda root: (make_run(root, "x") / "eval" / "atustc@last.json").write_text(
                json.dumps(
                    {"scenarios": {s: {"R1": 55.0} for s in SCENARIOS}, "provenance": provenance_record("atustc")}
                )
            ),
            r"R1 must be a fraction in \[0, 1\], got 55.0",
        ),
    ],
)
def test_errors(tmp_path: Path, setup, match: str) -> None:
    root = tmp_path / "runs"
    setup(root)
    with pytest.raises(AtustcError, match=match):
        collect_runs(root)


def test_cli_error_exit_2(tmp_path: Path) -> None:
    from atustc.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "--runs", str(tmp_path / "nope"), "--format", "md"])
    assert exc.value.code == 2


def test_metric_columns_stable() -> None:
    assert METRICS[:3] == ("Any-Time_R1", "Any-Time_mAP", "Any-Time_mINP")
    assert len(CSV_COLUMNS) == 13 + 2 * len(METRICS)
    assert build_leaderboard([]).frame.columns.tolist() == list(CSV_COLUMNS)


# --- provenance --------------------------------------------------------------------------------


def _add_best(run: Path, value: float) -> None:
    result = json.loads((run / "eval" / "atustc@last.json").read_text())
    for block in result["scenarios"].values():
        block["R1"] = value
    result["provenance"] = provenance_record("atustc", "best")
    (run / "eval" / "atustc@best.json").write_text(json.dumps(result))


def test_rows_never_mix_checkpoints_and_name_their_rule(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    make_run(root, "uniat-tiny-s0", seed=0, scen={s: 0.5 for s in SCENARIOS})
    _add_best(make_run(root, "uniat-tiny-s1", seed=1, scen={s: 0.7 for s in SCENARIOS}), 0.9)
    df = load_leaderboard(root).frame.set_index("checkpoint")
    assert df.loc["last", "n_runs"] == 2 and df.loc["last", "DT-ST_R1_mean"] == pytest.approx(0.6)
    assert df.loc["best", "n_runs"] == 1 and df.loc["best", "DT-ST_R1_mean"] == 0.9 and df.loc["best", "seeds"] == "1"
    md = to_markdown(load_leaderboard(root))
    assert "Checkpoint" in md
    assert sorted(line.count(" best ") for line in md.splitlines() if "uniat" in line) == [0, 1]


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        (lambda run, r: r.pop("provenance"), "no provenance record"),
        (
            lambda run, r: r["provenance"].update(checkpoint="best"),
            "provenance says checkpoint 'best', the file name says 'last'",
        ),
        (lambda run, r: r["provenance"].update(protocol_sha256="f" * 64), "protocol atustc changed since this eval"),
        (
            lambda run, r: (run / "status.json").write_text(
                json.dumps(
                    {**json.loads((run / "status.json").read_text()), "checkpoints": {"last": {"sha256": "9" * 64}}}
                )
            ),
            r"scored checkpoint sha256 000000000000…, but the run's checkpoints/last.pt is 999999999999…",
        ),
    ],
)
def test_provenance_mismatch_is_refused_in_one_line(tmp_path: Path, tamper, match: str) -> None:
    run = make_run(tmp_path / "runs", "uniat-tiny-s0")
    path = run / "eval" / "atustc@last.json"
    result = json.loads(path.read_text())
    tamper(run, result)
    path.write_text(json.dumps(result))
    with pytest.raises(AtustcError, match=match) as exc:
        load_leaderboard(tmp_path / "runs")
    assert "\n" not in exc.value.message and str(path) in exc.value.message


def test_an_eval_file_without_a_checkpoint_in_its_name_is_not_counted(tmp_path: Path) -> None:
    run = make_run(tmp_path / "runs", "uniat-tiny-s0")
    (run / "eval" / "atustc@last.json").rename(run / "eval" / "atustc.json")
    board = load_leaderboard(tmp_path / "runs")
    assert board.frame.iloc[0]["status"] == "failed"
    assert "names no checkpoint" in board.others[0].error


def table2_runs(root: Path) -> Path:
    """MS-ReID (2 seeds), MoAE-12 and VLMo runs of one bench, plus a Table 4 method the layout leaves out."""
    make_run(root, "said-s0", method="uniat-said", scen={s: 0.40 for s in SCENARIOS}, params=1_000_000,
             step_time_s=0.10)  # fmt: skip
    make_run(root, "said-s1", method="uniat-said", seed=1, scen={s: 0.50 for s in SCENARIOS}, params=1_000_000,
             step_time_s=0.14)  # fmt: skip
    make_run(root, "moae-s0", method="uniat-said-moae", scen={s: 0.60 for s in SCENARIOS}, params=4_250_000,
             step_time_s=0.15)  # fmt: skip
    make_run(root, "vlmo-s0", method="uniat-said-vlmo3", scen={s: 0.55 for s in SCENARIOS}, params=3_000_000)
    make_run(root, "transreid-s0", method="transreid", family="Tr-ReID")
    return root


def test_table2_layout_ratios_over_msreid(tmp_path: Path) -> None:
    from atustc.bench.table2 import table2_frame

    frame = table2_frame(load_leaderboard(table2_runs(tmp_path / "runs")))
    assert frame["method"].tolist() == ["uniat-said", "uniat-said-vlmo3", "uniat-said-moae"]  # the paper's order
    rows = frame.set_index("method")
    assert rows.loc["uniat-said", "params_ratio"] == 1.0 and rows.loc["uniat-said", "time_ratio"] == 1.0
    assert rows.loc["uniat-said-moae", "params_ratio"] == 4.25
    assert rows.loc["uniat-said-moae", "time_ratio"] == pytest.approx(0.15 / 0.12)  # over the 2-seed mean
    assert rows.loc["uniat-said-moae", "experts"] == 12 and rows.loc["uniat-said-vlmo3", "experts"] == 3
    assert math.isnan(rows.loc["uniat-said-vlmo3", "time_ratio"])  # no step time recorded
    assert rows.loc["uniat-said", "Any-Time_R1_mean"] == pytest.approx(0.45)
    assert rows.loc["uniat-said-moae", "paper_params"] == 4.2


def test_table2_time_ratio_is_cpu_time_when_every_run_records_it(tmp_path: Path) -> None:
    from atustc.bench.table2 import table2_frame

    root = tmp_path / "runs"
    # the MoE run's wall clock is inflated by other work (0.60 s), its CPU time per step is not
    make_run(root, "said-s0", method="uniat-said", step_time_s=0.20, step_cpu_s=0.40)
    make_run(root, "moae-s0", method="uniat-said-moae", step_time_s=0.60, step_cpu_s=0.46)
    rows = table2_frame(load_leaderboard(root)).set_index("method")
    assert rows["time_basis"].tolist() == ["cpu", "cpu"]
    assert rows.loc["uniat-said-moae", "time_ratio"] == pytest.approx(0.46 / 0.40)
    assert rows.loc["uniat-said-moae", "step_time_s"] == 0.60 and rows.loc["uniat-said-moae", "step_cpu_s"] == 0.46
    make_run(root, "vlmo-s0", method="uniat-said-vlmo3", step_time_s=0.30)  # an older run: wall clock only
    rows = table2_frame(load_leaderboard(root)).set_index("method")
    assert set(rows["time_basis"]) == {"wall"}  # one basis per block
    assert rows.loc["uniat-said-moae", "time_ratio"] == pytest.approx(0.60 / 0.20)
    assert rows.loc["uniat-said-vlmo3", "time_ratio"] == pytest.approx(0.30 / 0.20)


def test_table2_layout_from_the_cli(tmp_path: Path) -> None:
    from atustc.cli import cli

    runs = table2_runs(tmp_path / "runs")
    res = CliRunner().invoke(cli, ["leaderboard", "--runs", str(runs), "--layout", "table2", "--format", "md"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("| Method | Experts | Params × | Time × | R1 | mAP | Paper Params ×")
    assert lines[2].startswith("| MS-ReID | - | 1.00× | 1.00× (wall) | 45.00 ± 7.07 | 22.50 ± 3.54 | 1.0× | 1.0× |")
    assert lines[4].startswith("| +MoAE | 12 | 4.25× | 1.25× (wall) | 60.00 | 30.00 | 4.2× | 1.2× | 53.2 | 38.7 |")
    assert "transreid" not in res.output
    res = CliRunner().invoke(cli, ["leaderboard", "--runs", str(runs), "--layout", "table2", "--format", "latex"])
    assert res.exit_code == 0 and r"4.25$\times$" in res.output and r"45.00 $\pm$ 7.07" in res.output
    out = tmp_path / "t2.csv"
    res = CliRunner().invoke(cli, ["leaderboard", "--runs", str(runs), "--layout", "table2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    csv = pd.read_csv(out)
    assert csv["params_ratio"].tolist() == [1.0, 3.0, 4.25] and csv["n_runs"].tolist() == [2, 1, 1]
    res = CliRunner().invoke(cli, ["leaderboard", "--runs", str(runs), "--layout", "table2"])
    assert res.exit_code == 0 and "Table 2" in res.output


def test_table2_layout_without_its_methods(runs: Path, capsys: pytest.CaptureFixture) -> None:
    from atustc.cli import main

    for extra, match in (([], "no finished run of a Table 2 method (uniat-said, uniat-said-mmoe6"),
                         (["--compare", "a,b"], "--compare works with --layout table4, not table2")):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(["leaderboard", "--runs", str(runs), "--layout", "table2", *extra])
        assert exc.value.code == 2 and match in capsys.readouterr().err


# --- cost columns: machine and load ----------------------------------------------------------------

EPYC = {"cpu": "AMD EPYC 7B13", "cores": 2, "threads": 2, "gpus": []}
H200 = {"cpu": "Intel Xeon", "cores": 16, "threads": 16, "gpus": ["NVIDIA H200"]}


def _cost_runs(root: Path, second_machine: dict = EPYC, loaded_cpu_s: float = 40.0) -> Path:
    # uniat: two seeds, wall 100 s, 2 threads: CPU 190 s -> 0.95 of the CPU (quiet), 40 s -> 0.20 (loaded)
    make_run(root, "uniat-tiny-s0", seed=0, train_time_s=100.0, train_cpu_s=190.0, machine=EPYC)
    make_run(root, "uniat-tiny-s1", seed=1, train_time_s=100.0, train_cpu_s=loaded_cpu_s, machine=EPYC)
    make_run(root, "transreid-tiny-s0", method="transreid", family="Tr-ReID", train_time_s=100.0,
             train_cpu_s=100.0, machine=second_machine)  # fmt: skip
    return root


def test_a_loaded_run_marks_its_rows_time_and_throughput(tmp_path: Path) -> None:
    from rich.console import Console

    from atustc.bench.board_render import print_leaderboard

    board = load_leaderboard(_cost_runs(tmp_path / "runs"))
    frame = board.frame.set_index("method")
    assert frame.loc["uniat", "cost_flag"] == "loaded"  # 40 / (100 x 2) = 0.20 < 0.5
    assert frame.loc["transreid", "cost_flag"] == ""  # 100 / (100 x 2) = 0.50: not below
    assert frame.loc["uniat", "machine"] == "AMD EPYC 7B13, 2 cores"
    csv = pd.read_csv(io.StringIO(to_csv(board)), keep_default_na=False).set_index("method")
    assert csv.loc["uniat", "cost_flag"] == "loaded" and csv.loc["transreid", "cost_flag"] == ""
    md = to_markdown(board)
    row = next(line for line in md.splitlines() if "| uniat |" in line)
    cells = [c.strip() for c in row.split("|")]
    assert "**1.7 min** ± 0 s\\*" in cells and "**50.0** ± 0.0\\*" in cells  # Train and img/s, not Params
    assert "**1.00M** ± 0.00M" in cells
    assert "Machine: AMD EPYC 7B13, 2 cores." in md
    assert "\\* loaded machine: a run's training got under 50% of the CPU" in md
    assert "†" not in md
    latex = to_latex(board)
    assert latex.count(r"\textsuperscript{*}") == 3  # two cells and the note
    assert r"\footnotesize Machine: AMD EPYC 7B13, 2 cores." in latex
    console = Console(file=io.StringIO(), width=400)
    print_leaderboard(board, console)
    text = console.file.getvalue()
    assert "1.7 min*" in text and "Machine: AMD EPYC 7B13, 2 cores." in text and "* loaded machine" in text


def test_runs_from_two_machines_mark_every_rows_costs(tmp_path: Path) -> None:
    board = load_leaderboard(_cost_runs(tmp_path / "runs", second_machine=H200, loaded_cpu_s=190.0))
    frame = board.frame.set_index("method")
    assert frame.loc["uniat", "cost_flag"] == "machines" and frame.loc["transreid", "cost_flag"] == "machines"
    assert frame.loc["transreid", "machine"] == "NVIDIA H200, Intel Xeon, 16 cores"  # a GPU run: load not judged
    md = to_markdown(board)
    assert "Machines: NVIDIA H200, Intel Xeon, 16 cores (transreid); AMD EPYC 7B13, 2 cores (uniat)." in md
    assert "† runs from different machines" in md and "loaded machine" not in md
    row = next(line for line in md.splitlines() if "| transreid |" in line)
    assert "| **1.7 min**† | **50.0**† |" in row and "| **1.00M** |" in row  # params are not wall-clock


def test_runs_without_a_machine_record_are_not_flagged(runs: Path) -> None:
    board = load_leaderboard(runs)
    assert set(board.frame["machine"]) == {""} and set(board.frame["cost_flag"]) == {""}
    assert "Machine" not in to_markdown(board)


def test_cpu_utilisation_rule() -> None:
    from atustc.bench.costs import cpu_utilisation, row_flags

    cpu = {"machine": EPYC, "device": {"type": "cpu"}}
    assert cpu_utilisation({"train_time_s": 100.0, "train_cpu_s": 50.0}, cpu) == pytest.approx(0.25)
    assert cpu_utilisation({"train_time_s": 100.0, "train_cpu_s": 50.0}, {"device": {"type": "cuda"}}) is None
    assert cpu_utilisation({"train_time_s": 100.0}, cpu) is None
    assert row_flags(["a", "a"], [0.9, 0.49], 1) == "loaded"
    assert row_flags(["a", None], [0.9, None], 1) == ""
    assert row_flags(["a", "b"], [0.5, 0.9], 2) == "machines"
    assert row_flags(["a"], [0.1], 2) == "loaded;machines"
