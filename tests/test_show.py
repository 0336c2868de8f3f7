"""``atustc show``: query selection, rank-list pictures and CMC curves (files, determinism, numbers)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from atustc.cli import main
from atustc.errors import AtustcError
from atustc.features import save_features
from atustc.show.ranks import pick_queries, ranks_title
from atustc.table import save_table
from ranking_reference import exact_features, make_table


def frame():
    return pd.DataFrame(
        {
            "query": ["a", "b", "c", "d", "e"],
            "run": 0,
            "valid": [True, True, False, True, True],
            "ap": [0.5, 0.9, 0.0, 0.1, 0.5],
        }
    )


def test_pick_queries_orders_and_seeds():
    assert list(pick_queries(frame(), "best", 3)["query"]) == ["b", "a", "e"]
    assert list(pick_queries(frame(), "worst", 2)["query"]) == ["d", "a"]
    r = pick_queries(frame(), "random", 2, seed=4)
    assert len(r) == 2 and "c" not in set(r["query"]) and r.equals(pick_queries(frame(), "random", 2, seed=4))
    assert len(pick_queries(frame(), "best", 99)) == 4
    with pytest.raises(AtustcError, match="no valid query"):
        pick_queries(frame().assign(valid=False), "best", 2)
    assert ranks_title("DT-ST", "random", 8, 40, 3, 10) == "DT-ST: 8 random (seed 3) of 40 valid queries, top 10"
    assert "lowest-AP" in ranks_title("DT-ST", "worst", 8, 40, 0, 10)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("show")
    table = make_table(2, n_pid=3, frames=1)
    save_table(table, d / "t.parquet")
    (d / "t.manifest.json").write_text(json.dumps({"root": str(d / "images")}))
    rng = np.random.default_rng(0)
    for rel in table.relpath[: len(table) // 2]:  # half the images exist; the rest are placeholders
        p = d / "images" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(p)
    save_features(exact_features(2, table), d / "f.npz")
    return d


def show(capsys, *args):
    try:
        main(["show", *map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_show_ranks_writes_a_deterministic_png(data, capsys):
    base = [
        "ranks",
        "--table",
        data / "t.parquet",
        "--features",
        data / "f.npz",
        "--scenario",
        "DT-LT",
        "--no-progress",
        "-n",
        "2",
        "--top-k",
        "5",
    ]
    code, out, err = show(capsys, *base, "-o", data / "a.png")
    assert code == 0, err
    assert "2 lowest-AP of" in out
    img = Image.open(data / "a.png")
    assert img.format == "PNG" and img.size[0] > 6 * 74 and img.size[1] > 2 * 138
    show(capsys, *base, "-o", data / "b.png")
    assert (data / "a.png").read_bytes() == (data / "b.png").read_bytes()
    show(capsys, *base, "--junk", "hide", "-o", data / "c.png")
    assert (data / "c.png").read_bytes() != (data / "a.png").read_bytes()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--scenario", "XX", "-o", "x.png"], r"--scenario: atustc has no scenario 'XX' \(scenarios: DT-ST"),
        (["--scenario", "DT-ST", "-o", "x.jpg"], r"expected a .png file name"),
    ],
)
def test_show_ranks_errors(data, capsys, extra, match):
    code, _, err = show(capsys, "ranks", "--table", data / "t.parquet", "--features", data / "f.npz", *extra)
    assert code == 2 and err.count("\n") == 1 and __import__("re").search(match, err), err


def test_show_cmc_from_runs(data, capsys, tmp_path):
    from test_compare import write_run

    from atustc.bench.leaderboard import collect_runs
    from atustc.features import load_features
    from atustc.show.cmc import collect_curves
    from atustc.table import load_table

    table, f = load_table(data / "t.parquet"), load_features(data / "f.npz")
    root = tmp_path / "runs"
    a = write_run(root, "a-s0", "a", 0, f, table)
    write_run(root, "b-s0", "b", 0, exact_features(9, table), table)
    (root / "b-s0" / "eval" / "atustc@last.per_query.parquet").unlink()  # JSON only: reported ranks
    scenarios, curves = collect_curves(collect_runs(root), "atustc")
    assert scenarios == ["DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT"]
    want = json.loads((a / "eval" / "atustc@last.json").read_text())["scenarios"]["NT-ST"]
    full, reported = curves["NT-ST"]
    assert full.full and len(full.values) == 20 and not reported.full
    assert [full.values[k - 1] for k in (1, 5, 10, 20)] == pytest.approx(
        [want[f"R{k}"] for k in (1, 5, 10, 20)], abs=1e-12
    )
    assert "ranks 1/5/10/20 only" in reported.label and list(reported.ranks) == [1, 5, 10, 20]
    code, out, err = show(capsys, "cmc", "--runs", root, "-o", tmp_path / "cmc")
    assert code == 0, err
    png, svg = (tmp_path / "cmc.png").read_bytes(), (tmp_path / "cmc.svg").read_bytes()
    show(capsys, "cmc", "--runs", root, "-o", tmp_path / "cmc.png")
    assert (tmp_path / "cmc.png").read_bytes() == png and (tmp_path / "cmc.svg").read_bytes() == svg
    assert b"NT-ST" in svg
    code, _, err = show(capsys, "cmc", "--runs", root, "--protocol", "nope", "-o", tmp_path / "x")
    assert code == 2 and "no finished run has eval/nope@<checkpoint>.json" in err


def test_show_ranks_with_a_run_embeds_like_eval_run(data, capsys, monkeypatch, tmp_path):
    from atustc.features import Features, load_features

    features = load_features(data / "f.npz")
    calls = {}

    def fake_embed_run(run_dir, subset, root, *, checkpoint, progress):
        calls.update(run=run_dir, n=len(subset), root=root, checkpoint=checkpoint)
        keep = np.isin(features.relpath, subset["relpath"].to_numpy())
        return Features(features.relpath[keep], features.heads, features.feat[keep])

    import atustc.engine

    monkeypatch.setattr(atustc.engine, "embed_run", fake_embed_run, raising=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code, out, err = show(
        capsys,
        "ranks",
        "--table",
        data / "t.parquet",
        "--run",
        run_dir,
        "--checkpoint",
        "last",
        "--scenario",
        "NT-ST",
        "-n",
        "1",
        "--top-k",
        "3",
        "--no-progress",
        "-o",
        tmp_path / "r.png",
    )
    assert code == 0, err
    assert calls["run"] == run_dir and calls["root"] == data / "images" and calls["checkpoint"] == "last"
    table = __import__("pandas").read_parquet(data / "t.parquet")
    assert calls["n"] == int(table.flag.isin([2, 4, 6, 8]).sum())  # only NT-ST's pools are embedded
    assert (tmp_path / "r.png").is_file()
