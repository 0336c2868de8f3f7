"""``atustc eval`` end to end: the printed table, JSON/CSV outputs, --run, and one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from atustc.cli import main
from atustc.evaluate import evaluate
from atustc.features import Features, save_features
from atustc.protocol import load_protocol
from atustc.table import save_table
from ranking_reference import exact_features, make_table


@pytest.fixture()
def data(tmp_path):
    table = make_table(11, n_pid=5)
    save_table(table, tmp_path / "t.parquet")
    (tmp_path / "t.manifest.json").write_text(json.dumps({"root": str(tmp_path / "images")}))
    features = exact_features(11, table)
    save_features(features, tmp_path / "f.npz")
    return tmp_path, table, features


def _plain(record):
    """An eval JSON record without the admitted-query counts that `atustc eval` adds."""
    for group in ("scenarios", "summary"):
        for row in record[group].values():
            row.pop("admitted_queries")
            row.pop("outside_modality")
    return record


def run(capsys, *args):
    try:
        main(["eval", *map(str, args), "--no-progress"])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_prints_table_and_writes_json_and_csv(data, capsys):
    d, table, features = data
    code, out, err = run(
        capsys, "--table", d / "t.parquet", "--features", d / "f.npz", "--json", d / "o/m.json", "--csv", d / "o/m.csv"
    )
    assert code == 0, err
    expected = evaluate(load_protocol("atustc"), table, features).to_dict()
    for name in [*expected["scenarios"], "Any-Time"]:
        assert name in out
    dt_st = expected["scenarios"]["DT-ST"]
    assert f"{100 * dt_st['mAP']:.2f}" in out and f"{dt_st['valid_queries']}/" in out
    written = json.loads((d / "o/m.json").read_text())
    from atustc.provenance import features_hash

    assert written.pop("provenance")["features_sha256"] == features_hash(features)
    for group in ("scenarios", "summary"):  # the same fields, plus the admitted-query counts
        for name, row in written[group].items():
            assert {k: v for k, v in row.items() if k not in ("admitted_queries", "outside_modality")} == (
                expected[group][name]
            )
            assert row["admitted_queries"] >= row["valid_queries"]
    assert "with no gallery under the modality rule" in out
    frame = pd.read_csv(d / "o/m.csv")
    assert list(frame.name) == [*expected["scenarios"], "Any-Time"]
    row = frame[frame.name == "AD-LT"].iloc[0]
    assert row["mAP"] == expected["scenarios"]["AD-LT"]["mAP"]  # full precision round-trip
    assert not list(d.glob("o/.*"))  # no temporary files left behind


def test_protocol_by_path_and_mixed(data, capsys, tmp_path):
    d, _, _ = data
    code, out, _ = run(capsys, "--table", d / "t.parquet", "--features", d / "f.npz", "--protocol", "atustc-mixed")
    assert code == 0 and "Anytime" in out and "Long-term" in out
    p = tmp_path / "one.toml"
    p.write_text('[scenarios.Only]\nquery = {flag = [2, 3]}\ngallery = {flag = [6, 7]}\nhead = "AD-LT"\n')
    code, out, _ = run(capsys, "--table", d / "t.parquet", "--features", d / "f.npz", "--protocol", p)
    assert code == 0 and "Only" in out and "Any-Time" not in out


def bad_npz(path, relpath, **arrays):
    np.savez(path, relpath=np.asarray(relpath, dtype=str), **arrays)
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda d, f: (save_features(Features(f.relpath[5:], f.heads, f.feat[5:]), d / "x.npz"), d / "x.npz")[1],
            r"x.npz: \d+ of the \d+ images the protocol needs have no feature \(first: ",
        ),
        (
            lambda d, f: (save_features(Features(f.relpath, tuple("abcdef"), f.feat), d / "x.npz"), d / "x.npz")[1],
            r"scenario DT-ST: \S*x.npz: unknown head 'DT-ST'",
        ),
        (
            lambda d, f: bad_npz(d / "x.npz", relpath=f.relpath[:-1], heads=np.array(f.heads), feat=f.feat),
            r"x.npz: \d+ relpaths for \d+ feature rows",
        ),
        (
            lambda d, f: bad_npz(
                d / "x.npz",
                relpath=f.relpath,
                heads=np.array(f.heads),
                feat=np.where(np.arange(len(f.relpath))[:, None, None] == 7, np.nan, f.feat),
            ),
            r"row 7 .*NaN or infinite",
        ),
        (
            lambda d, f: bad_npz(d / "x.npz", relpath=f.relpath, heads=np.array(f.heads), feat=f.feat[:, 0, 0]),
            r"x.npz: feat must be \[N, H, D\]",
        ),
        (lambda d, f: d / "missing.npz", "missing.npz: features file not found"),
        (
            lambda d, f: bad_npz(
                d / "x.npz",
                relpath=np.concatenate([f.relpath, f.relpath[:1]]),
                heads=np.array(f.heads),
                feat=np.concatenate([f.feat, f.feat[:1]]),
            ),
            r"x.npz: relpath '\S+' appears more than once",
        ),
    ],
)
def test_bad_features_exit_2_with_one_line(data, capsys, make, match):
    d, _, f = data
    code, out, err = run(capsys, "--table", d / "t.parquet", "--features", make(d, f))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert __import__("re").search(match, err), err


def test_empty_scenario_and_option_errors(data, capsys, tmp_path):
    d, table, f = data
    save_table(table[table.flag.isin([2, 4, 6, 8])], tmp_path / "st.parquet")
    code, _, err = run(capsys, "--table", tmp_path / "st.parquet", "--features", d / "f.npz")
    assert code == 2 and "scenario DT-LT: query pool (flag in [3, 5]) matched no row of the table" in err
    code, _, err = run(capsys, "--table", d / "t.parquet")
    assert code == 2 and "give exactly one of --features or --run" in err
    code, _, err = run(capsys, "--table", d / "t.parquet", "--features", d / "f.npz", "--protocol", "nope")
    assert code == 2 and "unknown protocol 'nope'" in err
    code, _, err = run(capsys, "--table", d / "t.parquet", "--features", d / "f.npz", "--root", d)
    assert code == 2 and "--root only applies with --run" in err
    code, _, err = run(capsys, "--table", d / "t.parquet", "--run", d / "no-run")
    assert code == 2 and "no-run: run folder not found" in err


def test_run_embeds_only_needed_rows_and_stores_eval_json(data, capsys, monkeypatch, tmp_path):
    d, table, features = data
    calls = {}

    def fake_embed_run(run_dir, subset, root, *, checkpoint, progress):
        calls.update(run=run_dir, n=len(subset), root=root, checkpoint=checkpoint)
        keep = np.isin(features.relpath, subset["relpath"].to_numpy())
        return Features(features.relpath[keep], features.heads, features.feat[keep])

    import atustc.engine

    monkeypatch.setattr(atustc.engine, "embed_run", fake_embed_run, raising=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code, out, err = run(capsys, "--table", d / "t.parquet", "--run", run_dir, "--checkpoint", "last")
    assert code == 0, err
    assert calls == {
        "run": run_dir,
        "n": int(table.flag.between(2, 9).sum()),
        "root": d / "images",
        "checkpoint": "last",
    }
    stored = json.loads((run_dir / "eval" / "atustc@last.json").read_text())
    assert stored.pop("provenance")["checkpoint"] is None  # the fake run has no checkpoint file to hash
    assert _plain(stored) == evaluate(load_protocol("atustc"), table, features).to_dict()


def test_eval_with_features_does_not_import_timm(data):
    d, _, _ = data
    code = (
        "import sys\nfrom atustc.cli import main\n"
        f"main(['eval', '--table', {str(d / 't.parquet')!r}, '--features', {str(d / 'f.npz')!r}, '--no-progress'])\n"
        "print('TIMM', 'timm' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("TIMM False")


def test_run_end_to_end_with_the_engine(tmp_path, capsys):
    """A real tiny run (engine + split): ``eval --run`` embeds with it and stores RUN/eval/atustc@best.json."""
    from atustc.engine import embed_run, train_run
    from atustc.methods import is_registered, register_method
    from atustc.table import load_table
    from engine_helpers import METHOD, make_dataset, tiny_spec

    if not is_registered(METHOD):
        register_method(tiny_spec)
    _, table, split = make_dataset(tmp_path)
    run_dir = train_run(METHOD, table, split, "tiny", tmp_path / "run", overrides={"num_workers": 0}, progress=False)
    code, out, err = run(capsys, "--table", split / "table.parquet", "--run", run_dir)
    assert code == 0, err
    stored = json.loads((run_dir / "eval" / "atustc@best.json").read_text())
    test_table = load_table(split / "table.parquet")
    from atustc.provenance import features_hash, protocol_hash, sha256_file

    feats = embed_run(run_dir, test_table, progress=False)
    expected = evaluate(load_protocol("atustc"), test_table, feats)
    prov = stored.pop("provenance")
    assert _plain(stored) == expected.to_dict()
    assert prov["checkpoint"] == "best" and prov["checkpoint_sha256"] == sha256_file(run_dir / "checkpoints/best.pt")
    assert prov["protocol_sha256"] == protocol_hash(load_protocol("atustc"))
    assert prov["features_sha256"] != features_hash(feats)  # only the protocol's rows were embedded
    assert not (run_dir / "eval" / "atustc@last.json").exists()
    assert "Any-Time" in out
