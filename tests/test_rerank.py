"""k-reciprocal re-ranking: equal to a dense reference of the original algorithm, option parsing, CLI."""

import json

import numpy as np
import pytest
import torch

from atustc.errors import AtustcError
from atustc.rerank import RerankConfig, Reranker, parse_rerank


def dense_rerank(q, g, k1, k2, lam, normalize=True):
    """The original algorithm (Zhong et al., CVPR 2017) on dense N x N matrices, in float64."""
    x = np.concatenate([q, g]).astype(np.float64)
    if normalize:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    d = d / d.max(1, keepdims=True)
    n, nq = len(x), len(q)
    rank = np.argsort(d, axis=1, kind="stable")

    def reciprocal(i, k):
        forward = rank[i, : k + 1]
        return forward[(rank[forward, : k + 1] == i).any(1)]

    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = list(r)
        for c in r:
            rc = reciprocal(c, int(np.around(k1 / 2)))
            if len(np.intersect1d(rc, r)) > 2 / 3 * len(rc):
                expanded += list(rc)
        expanded = np.unique(expanded)
        w = np.exp(-d[i, expanded])
        v[i, expanded] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    m = np.minimum(v[:nq, None, :], v[None, nq:, :]).sum(-1)
    return (1 - lam) * (1 - m / (2 - m)) + lam * d[:nq, nq:]


def clustered(seed, n_id, per_id, dim, spread=0.6):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_id, dim))
    pid = np.repeat(np.arange(n_id), per_id)
    return (centers[pid] + spread * rng.normal(size=(len(pid), dim))).astype(np.float32), pid


@pytest.mark.parametrize(
    ("seed", "nq", "ng", "k1", "k2", "lam", "normalize"),
    [
        (0, 20, 100, 20, 6, 0.3, True),
        (1, 30, 90, 5, 3, 0.5, True),
        (2, 15, 60, 7, 1, 0.0, True),  # no query expansion; pure Jaccard
        (3, 10, 40, 20, 6, 1.0, False),  # k1 + 1 > N/2, raw (euclidean) features, original only
        (4, 40, 80, 3, 8, 0.3, True),  # k2 > k1 + 1
    ],
)
def test_equals_dense_reference(seed, nq, ng, k1, k2, lam, normalize, monkeypatch):
    import atustc.rerank

    monkeypatch.setattr(atustc.rerank, "CHUNK_CELLS", 997)  # many chunks
    monkeypatch.setattr(atustc.rerank, "SPARSE_STEP", 211)
    x, _ = clustered(seed, 12, (nq + ng) // 12 + 1, 16)
    x = x[: nq + ng]
    q, g = x[:nq], x[nq:]
    want = dense_rerank(q, g, k1, k2, lam, normalize)
    rr = Reranker(torch.from_numpy(q), torch.from_numpy(g), RerankConfig(k1, k2, lam), normalize=normalize)
    got = torch.cat([rr.distances(slice(a, min(a + 7, nq))) for a in range(0, nq, 7)]).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert (np.argsort(got, 1, kind="stable") == np.argsort(want, 1, kind="stable")).mean() > 0.99


def test_rerank_improves_clustered_retrieval():
    """On clustered data re-ranking should not hurt mAP (a sanity check, not a claim)."""
    from atustc.ranking import rank_chunks, rank_features, summarize

    x, pid = clustered(5, 30, 8, 32, spread=1.0)
    rng = np.random.default_rng(0)
    qi = np.sort(rng.choice(len(x), 60, replace=False))
    gi = np.setdiff1d(np.arange(len(x)), qi)
    q, g = torch.from_numpy(x[qi]), torch.from_numpy(x[gi])
    base = summarize(rank_features(q, g, torch.from_numpy(pid[qi]), torch.from_numpy(pid[gi])))
    rr = Reranker(q, g, RerankConfig())
    rer = summarize(rank_chunks(lambda r: -rr.distances(r), torch.from_numpy(pid[qi]), torch.from_numpy(pid[gi])))
    assert rer.mAP > base.mAP


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("k1=20,k2=6,lambda=0.3", RerankConfig(20, 6, 0.3)),
        ("", RerankConfig()),
        ("default", RerankConfig()),
        (" k1 = 10 ", RerankConfig(k1=10)),
        ("lambda=1", RerankConfig(lam=1.0)),
    ],
)
def test_parse(text, want):
    assert parse_rerank(text) == want
    assert parse_rerank(want.describe()) == want


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("k1=20,k3=6", r"unknown key 'k3' \(did you mean 'k[12]'\?\)"),
        ("k1", r"expected key=value items"),
        ("k1=", r"expected key=value items"),
        ("k1=2.5", r"k1 must be an integer, got '2.5'"),
        ("lambda=x", r"lambda must be a number"),
        ("k1=0", r"k1 must be a positive integer, got 0"),
        ("k2=-1", r"k2 must be a positive integer"),
        ("lambda=1.5", r"lambda must lie in \[0, 1\]"),
        ("foo=1", r"unknown key 'foo' \(keys: k1, k2, lambda\)"),
    ],
)
def test_parse_errors(text, match):
    with pytest.raises(AtustcError, match=match):
        parse_rerank(text)


def _cli(capsys, *args):
    from atustc.cli import main

    try:
        main([*map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_rerank_cli_matches_the_engine(tmp_path, capsys):
    """`atustc eval --rerank` = the protocol engine with the re-ranking hook; JSON records the options."""
    from atustc.evaluate import evaluate
    from atustc.features import Features, save_features
    from atustc.protocol import load_protocol
    from atustc.rerank import rerank_hook
    from atustc.table import save_table
    from ranking_reference import exact_features, make_table

    table = make_table(3, n_pid=3, frames=1)
    f = exact_features(3, table)
    # Continuous features (no exact ties) so that neighbour sets are well defined.
    rng = np.random.default_rng(0)
    f = Features(f.relpath, f.heads, (f.feat + 0.3 * rng.normal(size=f.feat.shape)).astype(np.float32))
    save_table(table, tmp_path / "t.parquet")
    save_features(f, tmp_path / "f.npz")
    code, out, err = _cli(
        capsys,
        "eval",
        "--table",
        tmp_path / "t.parquet",
        "--features",
        tmp_path / "f.npz",
        "--no-progress",
        "--rerank",
        "k1=6,k2=3,lambda=0.3",
        "--json",
        tmp_path / "r.json",
    )
    assert code == 0, err
    got = json.loads((tmp_path / "r.json").read_text())
    assert got.pop("rerank") == "k1=6,k2=3,lambda=0.3"
    assert got.pop("provenance")["checkpoint"] is None
    from atustc.querycounts import add_counts, query_counts

    protocol = load_protocol("atustc")
    want = evaluate(protocol, table, f, scores=rerank_hook(RerankConfig(6, 3, 0.3))).to_dict()
    assert got == add_counts(want, query_counts(protocol, table))
    plain = evaluate(protocol, table, f).to_dict()
    assert got != plain


def test_lambda_one_is_the_plain_ranking():
    """lambda = 1 keeps only the row-normalised squared distance: a monotone map of the cosine score."""
    from atustc.ranking import rank_chunks, rank_features

    x, pid = clustered(7, 10, 6, 8, spread=1.0)
    q, g = torch.from_numpy(x[:20]), torch.from_numpy(x[20:])
    rr = Reranker(q, g, RerankConfig(k1=6, k2=3, lam=1.0))
    a = rank_chunks(lambda r: -rr.distances(r), torch.from_numpy(pid[:20]), torch.from_numpy(pid[20:]))
    b = rank_features(q, g, torch.from_numpy(pid[:20]), torch.from_numpy(pid[20:]))
    np.testing.assert_array_equal(a.first_rank, b.first_rank)
    np.testing.assert_allclose(a.ap, b.ap, atol=1e-12)


def test_eval_rerank_bad_option_is_one_line(tmp_path, capsys):
    code, out, err = _cli(
        capsys, "eval", "--table", tmp_path / "t.parquet", "--features", tmp_path / "f.npz", "--rerank", "k1=20,k9=1"
    )
    assert code == 2
    assert err.strip().count("\n") == 0 and "--rerank: unknown key 'k9'" in err
