"""The ranking core against hand-computed cases, a plain per-query reference and scikit-learn."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from atustc.errors import AtustcError
from atustc.ranking import QueryMetrics, chunk_rows, order_keys, rank_features, rank_scores, summarize
from ranking_reference import path, reference_metrics, reference_query  # noqa: F401 (fixture)


def t(x, dtype=None):
    return torch.tensor(x, dtype=dtype)


def one(scores, g_pid, q_pid=1, junk=None):
    m = rank_scores(t([scores], torch.float32), t([q_pid]), t(g_pid), None if junk is None else t([junk]))
    return int(m.n_pos[0]), int(m.first_rank[0]), float(m.ap[0]), float(m.inp[0])


@pytest.mark.parametrize(
    ("scores", "g_pid", "junk", "expected"),
    [
        # matches at ranks 2 and 4: AP = (1/2 + 2/4) / 2, INP = 2/4
        ([0.9, 0.8, 0.7, 0.1], [2, 1, 3, 1], None, (2, 2, 0.5, 0.5)),
        # all tied: stable order puts the distractor (index 0) first -> ranks 2, 3
        ([0.5, 0.5, 0.5], [2, 1, 1], None, (2, 2, (1 / 2 + 2 / 3) / 2, 2 / 3)),
        # tie between a match (index 0) and a distractor (index 1): the match wins
        ([0.5, 0.5, 0.9], [1, 2, 3], None, (1, 2, 1 / 2, 1 / 2)),
        # negative scores: -0.1 (distractor), -0.2 (match), -0.5 (match)
        ([-0.1, -0.5, -0.2], [2, 1, 1], None, (2, 2, (1 / 2 + 2 / 3) / 2, 2 / 3)),
        # junk removes the best match and a distractor: kept = [0.7 match] -> rank 1
        ([0.9, 0.8, 0.7], [1, 2, 1], [True, True, False], (1, 1, 1.0, 1.0)),
        # junk removes the top distractor only
        ([0.9, 0.8, 0.7], [2, 3, 1], [True, False, False], (1, 2, 0.5, 0.5)),
        # -0.0 ties with +0.0: index order decides
        ([-0.0, 0.0], [1, 2], None, (1, 1, 1.0, 1.0)),
        ([0.0, -0.0], [2, 1], None, (1, 2, 0.5, 0.5)),
        # no match at all / only junk matches: invalid
        ([0.3, 0.2], [2, 3], None, (0, 0, 0.0, 0.0)),
        ([0.3, 0.2], [1, 1], [True, True], (0, 0, 0.0, 0.0)),
        # hardest match at rank 5 of 5: INP = 3/5, AP = (1/1 + 2/3 + 3/5)/3
        ([5, 4, 3, 2, 1], [1, 2, 1, 2, 1], None, (3, 1, (1 + 2 / 3 + 3 / 5) / 3, 3 / 5)),
    ],
)
def test_hand_computed_cases(scores, g_pid, junk, expected, path):
    n, first, ap, inp = one(scores, g_pid, junk=junk)
    assert (n, first) == expected[:2]
    assert ap == pytest.approx(expected[2], abs=1e-15)
    assert inp == pytest.approx(expected[3], abs=1e-15)


def test_summary_pads_cmc_and_drops_invalid_queries():
    # q0: match at rank 3 of 3 kept; q1: no match; q2: one kept entry, a match
    scores = t([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7], [0.1, 0.2, 0.3]])
    junk = t([[False, False, False], [False, False, False], [True, True, False]])
    m = rank_scores(scores, t([1, 5, 1]), t([2, 3, 1]), junk)
    s = summarize(m)
    assert (s.valid_queries, s.queries) == (2, 3)
    assert s.cmc.shape == (20,)
    assert s.cmc[0] == 0.5 and s.cmc[1] == 0.5 and s.cmc[2] == 1.0 and s.cmc[19] == 1.0
    assert s.mAP == pytest.approx((1 / 3 + 1.0) / 2)
    assert s.mINP == pytest.approx((1 / 3 + 1.0) / 2)
    empty = summarize(QueryMetrics.empty(4))
    assert (empty.valid_queries, empty.queries, empty.mAP, empty.cmc.sum()) == (0, 4, 0.0, 0.0)


def random_case(seed):
    rng = np.random.default_rng(seed)
    q, g = int(rng.integers(1, 15)), int(rng.integers(1, 60))
    kind = seed % 3
    if kind == 0:  # heavy ties, negative values included
        scores = rng.integers(-3, 4, size=(q, g)).astype(np.float32) * np.float32(0.25)
    elif kind == 1:  # continuous, negative and positive
        scores = rng.standard_normal((q, g)).astype(np.float32)
    else:  # few distinct values, all negative
        scores = -rng.integers(1, 3, size=(q, g)).astype(np.float32)
    q_pid, g_pid = rng.integers(0, 5, q), rng.integers(0, 5, g)
    junk = rng.random((q, g)) < rng.choice([0.0, 0.3, 0.9])
    return scores, q_pid, g_pid, junk


@pytest.mark.parametrize("seed", range(60))
def test_matches_per_query_reference(seed, path):
    scores, q_pid, g_pid, junk = random_case(seed)
    m = rank_scores(torch.from_numpy(scores), torch.from_numpy(q_pid), torch.from_numpy(g_pid), torch.from_numpy(junk))
    ref = [reference_query(scores[i], g_pid == q_pid[i], junk[i]) for i in range(len(q_pid))]
    assert m.n_pos.tolist() == [r[0] for r in ref]
    assert m.first_rank.tolist() == [r[1] for r in ref]
    np.testing.assert_allclose(m.ap, [r[2] for r in ref], rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.inp, [r[3] for r in ref], rtol=0, atol=1e-12)
    s, r = summarize(m), reference_metrics(ref)
    assert s.valid_queries == r["valid_queries"]
    for k in (1, 5, 10, 20):
        assert s.cmc[k - 1] == pytest.approx(r[f"R{k}"], abs=1e-12)
    assert s.mAP == pytest.approx(r["mAP"], abs=1e-12)
    assert s.mINP == pytest.approx(r["mINP"], abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_gallery_index_sets_the_tie_break(seed, path):
    scores, q_pid, g_pid, junk = random_case(3 * seed)  # kind 0: many ties
    perm = np.random.default_rng(seed).permutation(len(g_pid))
    m = rank_scores(
        torch.from_numpy(scores), torch.from_numpy(q_pid), torch.from_numpy(g_pid), gallery_index=torch.from_numpy(perm)
    )
    # reference: reorder the gallery so that position = gallery_index, then rank stably
    inv = np.argsort(perm)
    ref = [
        reference_query(scores[i][inv], (g_pid == q_pid[i])[inv], np.zeros(len(g_pid), bool)) for i in range(len(q_pid))
    ]
    assert m.first_rank.tolist() == [r[1] for r in ref]
    np.testing.assert_allclose(m.ap, [r[2] for r in ref], atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_ap_matches_sklearn_without_junk_or_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((6, 50)).astype(np.float32)
    q_pid, g_pid = rng.integers(0, 4, 6), rng.integers(0, 4, 50)
    m = rank_scores(torch.from_numpy(scores), torch.from_numpy(q_pid), torch.from_numpy(g_pid))
    for i in range(6):
        y = g_pid == q_pid[i]
        if y.any():
            assert m.ap[i] == pytest.approx(average_precision_score(y, scores[i]), abs=1e-12)


def exact_vectors(rng, n, dim=12, nonzero=4):
    x = np.zeros((n, dim), dtype=np.float32)
    for i in range(n):
        x[i, rng.choice(dim, nonzero, replace=False)] = rng.choice([-1.0, 1.0], nonzero)
    return x


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("chunk_size", [1, 3, None])
def test_chunked_features_equal_full_matrix(seed, chunk_size, path):
    rng = np.random.default_rng(seed)
    qf, gf = exact_vectors(rng, 17), exact_vectors(rng, 40)
    q_pid, g_pid = rng.integers(0, 4, 17), rng.integers(0, 4, 40)
    junk = rng.random((17, 40)) < 0.2
    qt, gt, jt = torch.from_numpy(qf), torch.from_numpy(gf), torch.from_numpy(junk)
    m = rank_features(
        qt,
        gt,
        torch.from_numpy(q_pid),
        torch.from_numpy(g_pid),
        junk_same=lambda r, c: jt[r, c],
        junk_other=lambda r, c: jt[r, c],
        chunk_size=chunk_size,
    )
    assert torch.equal(gt, torch.from_numpy(gf))  # inputs untouched unless overwrite=True
    full = rank_scores((qt / 2) @ (gt / 2).T, torch.from_numpy(q_pid), torch.from_numpy(g_pid), jt)
    again = rank_features(
        qt, gt.clone(), torch.from_numpy(q_pid), torch.from_numpy(g_pid), chunk_size=chunk_size, overwrite=True
    )
    plain = rank_features(qt, gt, torch.from_numpy(q_pid), torch.from_numpy(g_pid), chunk_size=chunk_size)
    np.testing.assert_array_equal(again.ap, plain.ap)
    np.testing.assert_array_equal(m.n_pos, full.n_pos)
    np.testing.assert_array_equal(m.first_rank, full.first_rank)
    np.testing.assert_allclose(m.ap, full.ap, rtol=0, atol=1e-15)
    np.testing.assert_allclose(m.inp, full.inp, rtol=0, atol=1e-15)


def test_euclidean_metric_ranks_by_distance():
    q = t([[0.0, 0.0]])
    g = t([[3.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    m = rank_features(q, g, t([1]), t([1, 2, 1]), metric="euclidean")
    assert (int(m.first_rank[0]), float(m.ap[0])) == (2, pytest.approx((1 / 2 + 2 / 3) / 2))


def test_order_keys_sort_like_a_stable_argsort():
    s = t([[0.5, -0.0, float("inf"), 0.0, -1e-30, -float("inf"), 0.5, 1e-30, -2.0]])
    keys = order_keys(s, torch.arange(9))
    by_key = torch.argsort(keys[0], descending=True).tolist()
    assert by_key == np.argsort(-s[0].numpy(), kind="stable").tolist()
    assert len(set(keys[0].tolist())) == 9


def test_chunks_are_balanced_and_cover_every_query():
    rows = chunk_rows(1001, 10, chunk_size=250)
    assert [r.stop - r.start for r in rows] == [201, 201, 201, 201, 197]
    assert rows[0].start == 0 and rows[-1].stop == 1001
    assert chunk_rows(0, 10) == []


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: rank_scores(torch.zeros(2, 3), t([1, 2]), t([1, 2])), r"scores must be \[Q, G\] = \[2, 2\]"),
        (lambda: rank_scores(t([[float("nan")]]), t([1]), t([1])), "NaN or infinite"),
        (lambda: rank_scores(torch.zeros(1, 2), t([1]), t([1, 2]), torch.zeros(2, 2, dtype=torch.bool)), "junk mask"),
        (lambda: rank_features(torch.zeros(2, 4), torch.zeros(3, 5), t([1, 2]), t([1, 2, 3])), "dimension mismatch"),
        (lambda: rank_features(torch.ones(1, 4), torch.ones(1, 4), t([1]), t([1]), metric="l1"), "metric must be"),
        (lambda: rank_features(t([[float("inf")]]), torch.ones(1, 1), t([1]), t([1])), "NaN or infinite"),
        (
            lambda: rank_scores(torch.zeros(1, 2), t([1]), t([1, 2]), gallery_index=t([0])),
            "gallery_index must have shape",
        ),
    ],
)
def test_bad_input_raises_one_clear_error(call, match):
    with pytest.raises(AtustcError, match=match):
        call()
