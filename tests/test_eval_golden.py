"""The eval JSON stays the same on the same features: a record written by the engine at commit 1bf7a78.

``tests/data/eval_golden.json`` holds ``evaluate(...).to_dict()`` of the ``atustc`` and
``atustc-mixed`` protocols on the seeded table and float features of :func:`golden_inputs`, as
the engine computed them before scoring moved to reused block buffers and in-place normalisation,
with the default ranking chunks and with chunks of 997 cells (``NAME@chunk997``: the per-query
sums of a chunk may round differently in the last bit, so each chunking has its record). Every
way of scoring now (default, blocks of several small chunks, ``in_place``) must give it exactly
(floats compared with ``==``).
"""

import json
from pathlib import Path

import numpy as np
import pytest

import atustc.ranking
from atustc.evaluate import evaluate
from atustc.features import Features
from atustc.protocol import load_protocol
from ranking_reference import HEADS, make_table

GOLDEN = Path(__file__).parent / "data" / "eval_golden.json"


def golden_inputs() -> tuple:
    """The table and features the golden record was computed on (deep ranks: R1 about 21 %)."""
    table = make_table(7, n_pid=12, n_clothes=3, frames=3)
    rng = np.random.default_rng(13)
    feat = rng.standard_normal((len(table), len(HEADS), 32), dtype=np.float32)
    feat += (
        0.4 * rng.standard_normal((table["pid"].max() + 1, len(HEADS), 32), dtype=np.float32)[table["pid"].to_numpy()]
    )
    return table, Features(table["relpath"].to_numpy().astype(str), HEADS, feat)


@pytest.mark.parametrize("protocol", ["atustc", "atustc-mixed"])
@pytest.mark.parametrize("how", ["default", "small-blocks", "in-place"])
def test_eval_json_equals_the_recorded_one(protocol, how, monkeypatch):
    want = json.loads(GOLDEN.read_text())[protocol + ("@chunk997" if how == "small-blocks" else "")]
    table, features = golden_inputs()
    before = features.feat.copy()
    if how == "small-blocks":  # many blocks of about three ranking chunks each
        monkeypatch.setattr(atustc.ranking, "CHUNK_CELLS", 997)
        monkeypatch.setattr(atustc.ranking, "SCORE_CELLS", 3001)
    got = evaluate(load_protocol(protocol), table, features, in_place=how == "in-place").to_dict()
    assert got == want
    assert np.array_equal(features.feat, before) == (how != "in-place")
