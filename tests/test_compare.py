"""Significance of a leaderboard gap: the bootstrap on constructed cases, and ``leaderboard --compare``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from atustc.bench.compare import RunQueries, compare_rows, paired_bootstrap, run_bootstrap
from atustc.errors import AtustcError


def test_constant_difference_gives_a_zero_width_interval():
    iv = paired_bootstrap(np.full(137, 0.125))
    assert (iv.diff, iv.low, iv.high) == (0.125, 0.125, 0.125) and iv.excludes_zero


def test_symmetric_case_covers_zero():
    diffs = np.tile([1.0, -1.0, 0.5, -0.5], 50)
    iv = paired_bootstrap(diffs, seed=3)
    assert iv.diff == 0.0 and iv.low < 0 < iv.high and not iv.excludes_zero
    assert iv.low == pytest.approx(-iv.high, rel=0.25)


@pytest.mark.parametrize(("mu", "sigma", "n"), [(0.02, 0.3, 400), (-0.1, 1.0, 1000)])
def test_matches_the_normal_approximation(mu, sigma, n):
    diffs = np.random.default_rng(1).normal(mu, sigma, n)
    iv = paired_bootstrap(diffs, n_boot=4000, seed=0)
    half = 1.959964 * diffs.std(ddof=1) / np.sqrt(n)
    assert iv.diff == pytest.approx(diffs.mean(), abs=1e-15)
    assert iv.low == pytest.approx(diffs.mean() - half, abs=0.08 * half)
    assert iv.high == pytest.approx(diffs.mean() + half, abs=0.08 * half)


def test_deterministic_for_a_seed():
    diffs = np.random.default_rng(2).normal(0, 1, 300)
    assert paired_bootstrap(diffs, seed=5) == paired_bootstrap(diffs, seed=5)
    assert paired_bootstrap(diffs, seed=5) != paired_bootstrap(diffs, seed=6)


def test_strata_average_and_resample_within():
    a, b = np.full(10, 1.0), np.full(30, 0.0)
    iv = paired_bootstrap([a, b])
    assert (iv.diff, iv.low, iv.high) == (0.5, 0.5, 0.5)  # mean of stratum means, not pooled (0.25)
    with pytest.raises(AtustcError, match="no paired items"):
        paired_bootstrap([a, np.array([])])


def test_run_bootstrap_paired_and_unpaired():
    a, b = np.array([0.5, 0.6, 0.7]), np.array([0.4, 0.5, 0.6])
    iv = run_bootstrap(a, b, paired=True)
    assert (round(iv.low, 12), round(iv.high, 12)) == (0.1, 0.1)  # constant paired gap
    un = run_bootstrap(a, b, paired=False)
    assert un.diff == pytest.approx(0.1) and un.low < 0.1 < un.high


def rq(split, seed, values):
    return RunQueries(split, seed, {"S#0": dict(zip([f"q{i}" for i in range(len(values))], values, strict=True))})


def test_compare_rows_pairs_queries_and_seeds():
    a = [rq("s", 0, [1.0, 0.0, 1.0, 1.0]), rq("s", 1, [1.0, 1.0, 1.0, 0.0])]
    b = [rq("s", 0, [0.0, 0.0, 1.0, 1.0]), rq("s", 1, [1.0, 0.0, 1.0, 0.0])]
    c = compare_rows(a, b)
    assert c.a == 0.75 and c.b == 0.5 and c.queries.diff == 0.25 and c.n_queries == 4 and c.n_runs == (2, 2)
    assert c.runs is None  # two runs: no interval over runs
    c3 = compare_rows([*a, rq("s", 2, [1.0, 1.0, 1.0, 1.0])], [*b, rq("s", 2, [0.0, 1.0, 1.0, 1.0])])
    # per-run gaps 0.25, 0.25, 0.25 (paired by seed): a zero-width interval at 0.25
    assert c3.runs is not None and (c3.runs.diff, c3.runs.low, c3.runs.high) == pytest.approx((0.25, 0.25, 0.25))
    with pytest.raises(AtustcError, match="share no split"):
        compare_rows(a, [rq("t", 0, [1.0, 1.0, 1.0, 1.0])])
    with pytest.raises(AtustcError, match="different queries"):
        compare_rows(a, [rq("s", 0, [1.0, 1.0, 1.0])])


# ------------------------------------------------------------------ leaderboard --compare end to end


def write_run(root: Path, name: str, method: str, seed: int, features, table) -> Path:
    """A finished run folder whose eval JSON and per-query file come from the real evaluation."""
    from atustc.evaluate import evaluate
    from atustc.protocol import load_protocol
    from atustc.provenance import provenance
    from atustc.runfolder import RunFolder

    run = root / name
    (run / "eval").mkdir(parents=True)
    (run / "status.json").write_text(
        json.dumps({"state": "finished", "method": method, "preset": "tiny", "seed": seed})
    )
    (run / "config.json").write_text(
        json.dumps({"method": method, "family": "AT-ReID", "preset": "tiny", "seed": seed})
    )
    (run / "manifest.json").write_text(json.dumps({"table_hash": "abcdef01", "split_hash": "split0"}))
    protocol = load_protocol("atustc")
    result = evaluate(protocol, table, features, top_k=3)
    record = {**result.to_dict(), "provenance": provenance(protocol, features, {"checkpoint": "last"})}
    folder = RunFolder(run)
    folder.eval_file("atustc", "last").write_text(json.dumps(record))
    result.per_query.to_parquet(folder.per_query_file("atustc", "last"), index=False)
    return run


@pytest.fixture(scope="module")
def compare_runs(tmp_path_factory):
    from ranking_reference import exact_features, make_table

    table = make_table(4, n_pid=4, frames=1)
    root = tmp_path_factory.mktemp("cmp") / "runs"
    for seed in (0, 1):
        good = exact_features(10 + seed, table)
        # "good": features pulled towards an identity code, "weak": plain random
        code = np.random.default_rng(seed).normal(size=(table.pid.max() + 1, good.feat.shape[2])).astype(np.float32)
        feat = good.feat + 0.4 * code[table.pid.to_numpy()][:, None, :]
        write_run(root, f"good-s{seed}", "good", seed, type(good)(good.relpath, good.heads, feat), table)
        write_run(root, f"weak-s{seed}", "weak", seed, exact_features(20 + seed, table), table)
    return root


def test_leaderboard_compare_cli(compare_runs):
    from atustc.bench.leaderboard import collect_runs
    from atustc.bench.significance import comparison_frame
    from atustc.commands.leaderboard import command

    frame = comparison_frame(collect_runs(compare_runs), "good", "weak/tiny")
    jsons = {p.parent.parent.name: json.loads(p.read_text()) for p in compare_runs.glob("*/eval/atustc@last.json")}
    row = frame[(frame.scenario == "DT-LT") & (frame.metric == "mAP")].iloc[0]
    want_a = np.mean([jsons[f"good-s{s}"]["scenarios"]["DT-LT"]["mAP"] for s in (0, 1)])
    want_b = np.mean([jsons[f"weak-s{s}"]["scenarios"]["DT-LT"]["mAP"] for s in (0, 1)])
    assert row.A == pytest.approx(want_a, abs=1e-12) and row["diff"] == pytest.approx(want_a - want_b, abs=1e-12)
    assert row.q_low <= row["diff"] <= row.q_high and np.isnan(row.r_low)  # 2 seeds: no run interval
    anytime = frame[(frame.scenario == "Any-Time") & (frame.metric == "R1")].iloc[0]
    want = np.mean([jsons[f"good-s{s}"]["summary"]["Any-Time"]["R1"] for s in (0, 1)])
    assert anytime.A == pytest.approx(want, abs=1e-12)
    assert anytime.q_low > 0  # the pulled features are clearly better

    runner = CliRunner()
    md = runner.invoke(command, ["--runs", str(compare_runs), "--compare", "good,weak", "--format", "md"])
    assert md.exit_code == 0, md.output
    assert "| Scenario | Metric | good | weak | good - weak |" in md.output and "Paired bootstrap" in md.output
    assert md.output.index("| Task") < md.output.index("| Scenario")  # leaderboard first, then the comparison
    tex = runner.invoke(command, ["--runs", str(compare_runs), "--compare", "good,weak", "--format", "latex"])
    assert tex.exit_code == 0 and tex.output.count(r"\begin{tabular}") == 2
    csv = runner.invoke(command, ["--runs", str(compare_runs), "--compare", "good,weak", "--format", "csv"])
    assert csv.output.splitlines()[0].startswith("scenario,metric,A,B,diff,q_low")
    again = runner.invoke(command, ["--runs", str(compare_runs), "--compare", "good,weak", "--format", "csv"])
    assert again.output == csv.output  # deterministic


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("good", r"expected two different rows as A,B"),
        ("good,good", r"expected two different rows"),
        ("good,nope", r"no finished leaderboard row 'nope' \(rows: good/tiny@last, weak/tiny@last\)"),
    ],
)
def test_compare_errors(compare_runs, spec, match, capsys):
    from atustc.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "--runs", str(compare_runs), "--compare", spec, "--format", "md"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert __import__("re").search(match, err), err


def test_stale_or_missing_per_query_file_refused(compare_runs, tmp_path, capsys):
    import shutil

    import pandas as pd

    from atustc.cli import main

    root = tmp_path / "runs"
    shutil.copytree(compare_runs, root)
    pq = root / "weak-s1" / "eval" / "atustc@last.per_query.parquet"
    frame = pd.read_parquet(pq)
    frame.loc[frame.index[frame.valid][0], "ap"] = 0.999
    frame.to_parquet(pq, index=False)
    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "--runs", str(root), "--compare", "good,weak", "--format", "md"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "disagrees with the run's eval JSON" in err and err.count("\n") == 1
    pq.unlink()
    with pytest.raises(SystemExit):
        main(["leaderboard", "--runs", str(root), "--compare", "good,weak"])
    assert "no per-query results" in capsys.readouterr().err
