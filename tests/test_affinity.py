"""SAAI's affinity inference (atustc/affinity.py): a hand-made example, a dense reference, chunking,
validation, and how a method's set-dependent scoring reaches a run (``run_scoring``)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import atustc.affinity as affinity
from atustc.affinity import AffinityConfig
from atustc.errors import AtustcError


def test_hand_made_example_changes_the_ranking() -> None:
    # unit gallery vectors with cosines g1.g2 = 0.8, g1.g3 = 0, g2.g3 = 0.6; query cosines 0.6, 0.96, 0.8
    gallery = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    query = torch.tensor([[0.6, 0.8]])
    scores = AffinityConfig(k1=2, k2=2).scorer(query, gallery)(slice(0, 1))[0]
    # k1 = 2 sparsified gallery rows: g1 (1, .8, 0), g2 (.8, 1, 0), g3 (0, .6, 1); the 2 nearest of
    # g1 and g2 are {g1, g2}, of g3 {g3, g2}: A_g1 = A_g2 = (.9, .9, 0), A_g3 = (.4, .8, .5)
    a12 = [1 / math.sqrt(2), 1 / math.sqrt(2), 0.0]
    n3 = math.sqrt(0.4**2 + 0.8**2 + 0.5**2)
    a3 = [0.4 / n3, 0.8 / n3, 0.5 / n3]
    nq = math.sqrt(0.96**2 + 0.8**2)
    aq = [0.0, 0.96 / nq, 0.8 / nq]  # the query keeps its 2 largest cosines

    def dot(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b))

    expected = [dot(aq, a12) + 0.6, dot(aq, a12) + 0.96, dot(aq, a3) + 0.8]
    torch.testing.assert_close(scores, torch.tensor(expected), rtol=1e-5, atol=1e-6)
    assert scores.argsort(descending=True).tolist() == [2, 1, 0]  # plain cosine ranks g2 first


def _dense_reference(q: torch.Tensor, g: torch.Tensor, k1: int, k2: int) -> torch.Tensor:
    q, g = F.normalize(q, dim=1), F.normalize(g, dim=1)

    def keep(sim: torch.Tensor) -> torch.Tensor:
        vals, idx = sim.topk(k1, dim=1)
        return torch.zeros_like(sim).scatter(1, idx, vals)

    s_gg = g @ g.T
    a_g = keep(s_gg)[s_gg.topk(k2, dim=1).indices].mean(1)
    return F.normalize(keep(q @ g.T), dim=1) @ F.normalize(a_g, dim=1).T + q @ g.T


def test_matches_a_dense_reference_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(0)
    q, gal = torch.randn(9, 6, generator=g), torch.randn(13, 6, generator=g) * 3  # raw features: normalised inside
    expected = _dense_reference(q, gal, 4, 3)
    monkeypatch.setattr(affinity, "CHUNK_CELLS", 20)  # one or two rows per chunk
    scorer = AffinityConfig(k1=4, k2=3).scorer(q, gal)
    got = torch.cat([scorer(slice(0, 4)), scorer(slice(4, 9))])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # k1 beyond the gallery is cut to it (and k2 to k1)
    torch.testing.assert_close(
        AffinityConfig(k1=50, k2=20).scorer(q, gal)(slice(0, 9)), _dense_reference(q, gal, 13, 13), rtol=1e-5, atol=1e-6
    )
    assert AffinityConfig().scorer(q, gal[:0])(slice(0, 9)).shape == (9, 0)


def test_hook_checks_features_and_config_validation() -> None:
    hook = AffinityConfig(k1=2, k2=1).hook()
    q, g = torch.randn(3, 4), torch.randn(5, 4)
    torch.testing.assert_close(hook(q, g, "cosine")(slice(0, 3)), AffinityConfig(2, 1).scorer(q, g)(slice(0, 3)))
    with pytest.raises(AtustcError, match="NaN or infinite"):
        hook(q, torch.full((5, 4), float("nan")), "cosine")
    for kwargs, message in (
        ({"k1": 0}, "k1 must be a positive integer, got 0"),
        ({"k2": 2.5}, "k2 must be a positive integer, got 2.5"),
        ({"k1": 2, "k2": 3}, "k2 must be <= k1, got k1=2, k2=3"),
    ):
        with pytest.raises(AtustcError, match=message):
            AffinityConfig(**kwargs)
    assert AffinityConfig().describe() == "affinity k1=20,k2=6"


def test_run_scoring_follows_the_method_and_the_run_recipe(tmp_path) -> None:
    from atustc.engine import run_scoring
    from atustc.engine.config import recipe_to_dict
    from atustc.io import write_json_atomic
    from atustc.methods import get_method

    def run(method: str, **extra: int):
        folder = tmp_path / method
        recipe = replace(get_method(method).recipe("tiny"), extra=extra)
        write_json_atomic(folder / "config.json", {"method": method, "recipe": recipe_to_dict(recipe)})
        return run_scoring(folder)

    assert run("saai") is None
    assert run("saai-ai") == AffinityConfig(20, 6)
    assert run("saai-ai", ai_k1=8, ai_k2=2).describe() == "affinity k1=8,k2=2"
