"""Per-query results: the ranking core's top lists against a plain reference, and ``eval --per-query``."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from atustc.cli import main
from atustc.evaluate import PER_QUERY_COLUMNS, evaluate
from atustc.features import save_features
from atustc.protocol import load_protocol
from atustc.ranking import JUNK, NEGATIVE, POSITIVE, rank_features, rank_scores
from atustc.table import save_table
from ranking_reference import exact_features, make_table, path, reference_query  # noqa: F401


def reference_top(scores, match, junk, k):
    """Stable ranking; the first k kept entries, and the junk above the k-th kept one (at most k, highest)."""
    order = np.argsort(-scores.astype(np.float32), kind="stable")
    kept = [g for g in order if not junk[g]][:k]
    if len(kept) == k:
        last = int(np.flatnonzero(order == kept[-1])[0])
        junk_above = [g for g in order[:last] if junk[g]]
    else:
        junk_above = [g for g in order if junk[g]]
    shown = set(kept) | set(junk_above[:k])
    out = [g for g in order if g in shown]
    labels = [JUNK if junk[g] else (POSITIVE if match[g] else NEGATIVE) for g in out]
    return out, labels


def assert_top_list_matches_reference(t, i, scores, positive, junk, k):
    """Query ``i``'s top list in ``t`` equals :func:`reference_top`, -1 padded after it."""
    want_idx, want_lab = reference_top(scores, positive, junk, k)
    got = t.top_index[i][t.top_index[i] >= 0].tolist()
    assert got == want_idx
    assert t.top_label[i][: len(got)].tolist() == want_lab
    assert (t.top_label[i][len(got) :] == -1).all()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 10])
def test_top_lists_match_reference(seed, k, path):  # noqa: F811
    rng = np.random.default_rng(seed)
    n_q, n_g = 7, int(rng.integers(2, 15))
    scores = rng.integers(-3, 4, (n_q, n_g)).astype(np.float32) / 4  # many ties, negatives, -0.0
    q_pid, g_pid = rng.integers(0, 3, n_q), rng.integers(0, 3, n_g)
    junk = rng.random((n_q, n_g)) < [[0.0], [0.3], [0.6], [1.0], [0.2], [0.5], [0.1]]  # one query all junk
    m = rank_scores(torch.from_numpy(scores), torch.from_numpy(q_pid), torch.from_numpy(g_pid), torch.from_numpy(junk))
    from atustc.ranking import rank_block, same_identity_pairs

    rows, cols = same_identity_pairs(torch.from_numpy(q_pid), torch.from_numpy(g_pid))
    lookup = lambda r, c: torch.from_numpy(junk)[r, c]  # noqa: E731
    t = rank_block(torch.from_numpy(scores), torch.arange(n_g), rows, cols, lookup, lookup, top_k=k)
    assert t.top_index.shape == (n_q, 2 * k)
    for i in range(n_q):
        assert_top_list_matches_reference(t, i, scores[i], q_pid[i] == g_pid, junk[i], k)
        # metrics unchanged by the top-list path
        assert t.ap[i] == m.ap[i] and t.first_rank[i] == m.first_rank[i]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 6])
def test_top_lists_from_the_short_list_match_reference(seed, k, monkeypatch):
    """Galleries much longer than 2 k and junk that leaves k kept entries among each query's 2 k best:
    the lists come from those 2 k entries alone (the whole-block path is not taken) and are exact."""
    import atustc.rankblock
    from atustc.ranking import rank_block, same_identity_pairs

    monkeypatch.setattr(atustc.rankblock, "_top_lists_full", lambda *a: pytest.fail("whole-block path taken"))
    rng = np.random.default_rng(seed)
    n_q, n_g = 6, 60
    scores = rng.integers(-6, 7, (n_q, n_g)).astype(np.float32) / 4  # many ties, negatives, -0.0
    q_pid, g_pid = rng.integers(0, 4, n_q), rng.integers(0, 4, n_g)
    junk = rng.random((n_q, n_g)) < 0.15
    order = np.argsort(-scores, axis=1, kind="stable")
    for i in range(n_q):  # at most k - 1 junk among each query's 2 k best, some of it above kept entries
        best = order[i, : 2 * k]
        junk[i, best] = False
        junk[i, best[: min(k - 1, 2)]] = True
    rows, cols = same_identity_pairs(torch.from_numpy(q_pid), torch.from_numpy(g_pid))
    lookup = lambda r, c: torch.from_numpy(junk)[r, c]  # noqa: E731
    t = rank_block(torch.from_numpy(scores), torch.arange(n_g), rows, cols, lookup, lookup, top_k=k)
    for i in range(n_q):
        assert_top_list_matches_reference(t, i, scores[i], q_pid[i] == g_pid, junk[i], k)
    if k > 1:
        assert (t.top_label == JUNK).any()


def test_rank_features_top_k_chunks_agree():
    rng = np.random.default_rng(1)
    q, g = torch.randn(23, 8), torch.randn(31, 8)
    qp, gp = torch.from_numpy(rng.integers(0, 4, 23)), torch.from_numpy(rng.integers(0, 4, 31))
    a = rank_features(q, g, qp, gp, top_k=5, chunk_size=4)
    b = rank_features(q, g, qp, gp, top_k=5)
    np.testing.assert_array_equal(a.top_index, b.top_index)
    plain = rank_features(q, g, qp, gp)
    assert plain.top_index is None and np.array_equal(plain.ap, b.ap)
    # first listed positive sits at the reported first rank (no junk here)
    for i in np.flatnonzero(a.valid):
        listed = np.flatnonzero(a.top_label[i] == POSITIVE)
        assert (int(listed[0]) + 1 == a.first_rank[i]) if a.first_rank[i] <= 5 else listed.size == 0


@pytest.mark.parametrize("protocol_name", ["atustc", "atustc-mixed"])
def test_per_query_frame_reproduces_the_metrics(protocol_name):
    table = make_table(5, n_pid=5)
    features = exact_features(5, table)
    protocol = load_protocol(protocol_name)
    result = evaluate(protocol, table, features, top_k=4)
    assert result.to_dict() == evaluate(protocol, table, features).to_dict()
    pq = result.per_query
    assert list(pq.columns) == list(PER_QUERY_COLUMNS)
    for name, row in result.scenarios.items():
        runs = [d for _, d in pq[pq.scenario == name].groupby("run")]
        ap = [np.mean(d.ap.to_numpy()[d.valid.to_numpy()]) for d in runs]
        r1 = [np.mean(d.first_rank.to_numpy()[d.valid.to_numpy()] == 1) for d in runs]
        if len(runs) == 1:
            assert ap[0] == row.mAP and r1[0] == row.cmc[0]  # exactly
        assert np.mean(ap) == pytest.approx(row.mAP, abs=1e-15) and np.mean(r1) == pytest.approx(row.cmc[0], abs=1e-15)
        for d in runs:
            assert int(d.valid.sum()) == int(sum(d.n_pos > 0))
    # Junk is listed in place but takes no rank; the first 'pos' with rank <= k is the first positive.
    for _, r in pq[pq.valid].iterrows():
        ranks = [k for k, lab in zip(r.top_rank, r.top_label, strict=True) if lab == "pos"]
        assert (ranks[0] == r.first_rank) if r.first_rank <= 4 else not ranks
        assert all(k == 0 for k, lab in zip(r.top_rank, r.top_label, strict=True) if lab == "junk")
        kept = [k for k in r.top_rank if k]
        assert kept == list(range(1, len(kept) + 1))


def test_eval_cli_per_query(tmp_path, capsys):
    table = make_table(11, n_pid=4)
    save_table(table, tmp_path / "t.parquet")
    features = exact_features(11, table)
    save_features(features, tmp_path / "f.npz")
    main(
        [
            "eval",
            "--table",
            str(tmp_path / "t.parquet"),
            "--features",
            str(tmp_path / "f.npz"),
            "--no-progress",
            "--per-query",
            str(tmp_path / "pq.parquet"),
            "--top-k",
            "3",
            "--json",
            str(tmp_path / "m.json"),
        ]
    )
    capsys.readouterr()
    pq = pd.read_parquet(tmp_path / "pq.parquet")
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert list(pq.columns) == list(PER_QUERY_COLUMNS)
    assert set(pq.scenario) == set(metrics["scenarios"])
    d = pq[pq.scenario == "NT-LT"]
    assert np.mean(d.ap.to_numpy()[d.valid.to_numpy()]) == metrics["scenarios"]["NT-LT"]["mAP"]
    assert max(sum(1 for lab in labs if lab != "junk") for labs in pq.top_label) == 3
    assert set(np.concatenate(pq.top_relpath.to_numpy())) <= set(table.relpath)
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "eval",
                "--table",
                str(tmp_path / "t.parquet"),
                "--features",
                str(tmp_path / "f.npz"),
                "--per-query",
                str(tmp_path / "pq.csv"),
            ]
        )
    assert exc.value.code == 2 and "expected a .parquet file name" in capsys.readouterr().err


def test_eval_run_keeps_per_query_results_and_rerank_never_replaces_the_plain_score(tmp_path, capsys, monkeypatch):
    from atustc.features import Features
    from atustc.runfolder import RunFolder

    table = make_table(6, n_pid=3, frames=1)
    save_table(table, tmp_path / "t.parquet")
    base = exact_features(6, table)
    features = Features(
        base.relpath,
        base.heads,
        base.feat + np.float32(0.1) * np.random.default_rng(0).normal(size=base.feat.shape).astype(np.float32),
    )

    def fake_embed_run(run_dir, subset, root, *, checkpoint, progress):
        keep = np.isin(features.relpath, subset["relpath"].to_numpy())
        return Features(features.relpath[keep], features.heads, features.feat[keep])

    import atustc.engine

    monkeypatch.setattr(atustc.engine, "embed_run", fake_embed_run, raising=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"root": str(tmp_path / "images")}))  # the images' root
    main(["eval", "--table", str(tmp_path / "t.parquet"), "--run", str(run_dir), "--no-progress"])
    folder = RunFolder(run_dir)
    stored = json.loads(folder.eval_file("atustc", "best").read_text())
    pq = pd.read_parquet(folder.per_query_file("atustc", "best"))
    d = pq[pq.scenario == "AD-ST"]
    assert np.mean(d.ap.to_numpy()[d.valid.to_numpy()]) == stored["scenarios"]["AD-ST"]["mAP"]
    main(
        [
            "eval",
            "--table",
            str(tmp_path / "t.parquet"),
            "--run",
            str(run_dir),
            "--no-progress",
            "--rerank",
            "k1=4,k2=2",
        ]
    )
    capsys.readouterr()
    assert json.loads(folder.eval_file("atustc", "best").read_text()) == stored  # untouched
    reranked = json.loads(folder.rerank_file("atustc", "best").read_text())
    assert reranked["rerank"] == "k1=4,k2=2,lambda=0.3"
