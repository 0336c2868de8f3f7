"""Shared query x pool score matrices (:mod:`atustc.poolscores`): features normalised once, not twice."""

import numpy as np
import torch

from atustc.evaluate import evaluate
from atustc.features import Features
from atustc.poolscores import PoolScores
from atustc.protocol import load_protocol
from atustc.synth.layouts import write_layout
from tests.reid_standin import index_root


def _scores(pool: PoolScores, query: np.ndarray, gallery: np.ndarray) -> torch.Tensor:
    return pool.scorer(0, query, gallery)(query, gallery)(slice(0, len(query)))


def test_normalised_features_give_the_bits_of_normalising_a_copy():
    rng = np.random.default_rng(3)
    feat = rng.standard_normal((60, 1, 48), dtype=np.float32) * 3
    fpos, query, gallery = np.arange(60), np.arange(0, 60, 3), np.setdiff1d(np.arange(60), np.arange(0, 60, 3))
    plain = _scores(PoolScores(feat, fpos, "cosine"), query, gallery)
    unit = torch.nn.functional.normalize(torch.from_numpy(feat[:, 0]), dim=1).numpy()[:, None, :]
    given = _scores(PoolScores(unit, fpos, "cosine", normalized=True), query, gallery)
    again = _scores(PoolScores(unit, fpos, "cosine"), query, gallery)  # what in-place evaluation did before
    assert torch.equal(given, plain)
    assert not torch.equal(again, plain)  # a second normalisation moves last bits: the case is not vacuous


def test_in_place_evaluation_of_sampled_galleries_equals_the_copying_one(tmp_path):
    write_layout(tmp_path / "sysu", "sysu-mm01", seed=2)
    table = index_root("sysu-mm01", tmp_path / "sysu")
    proto = load_protocol("sysu-mm01:all-settings")
    rng = np.random.default_rng(5)
    pid = table["pid"].to_numpy()
    feat = rng.standard_normal((len(table), 1, 32), dtype=np.float32) * rng.uniform(0.5, 4, (len(table), 1, 1))
    feat += rng.standard_normal((pid.max() + 1, 1, 32), dtype=np.float32)[pid]  # norms vary: cosine matters

    def features() -> Features:
        return Features(table["relpath"].to_numpy().astype(str), ("global",), feat.copy())

    copying = evaluate(proto, table, features()).to_dict()
    assert evaluate(proto, table, features(), in_place=True).to_dict() == copying
    assert copying["trials"]
