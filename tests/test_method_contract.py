"""One contract test over every registered method at the ``tiny`` preset (timm's pattern).

A method added to the registry is checked here without writing a test of its own: it builds from a
label space, trains one step through ``forward``/``loss``, and embeds ``[B, H, D]`` in eval mode.
"""

import pytest
import torch

from atustc.methods import Batch, LabelSpace, ReIDModel, list_methods

LABELS = LabelSpace(num_pids=4, num_outfits=6, outfit_to_pid=(0, 0, 1, 2, 2, 3), num_cameras=16)


def _batch(recipe) -> Batch:
    g = torch.Generator().manual_seed(0)
    h, w = recipe.input_size
    outfit = torch.tensor([0, 1, 2, 3, 4, 5, 0, 3])
    return Batch(
        images=torch.randn(8, 3, h, w, generator=g),
        pid=torch.tensor(LABELS.outfit_to_pid)[outfit],
        outfit=outfit,
        modality=torch.tensor([0, 1, 0, 1, 0, 1, 1, 0]),
        camera=torch.tensor([0, 8, 1, 9, 2, 10, 11, 3]),
    )


@pytest.mark.parametrize("spec", list_methods(), ids=lambda s: s.name)
def test_every_method_honours_the_contract(spec):
    torch.manual_seed(0)
    recipe = spec.recipe("tiny")
    assert spec.recipe("paper").total_iters >= recipe.total_iters
    model = spec.create(LABELS, "tiny")
    assert isinstance(model, ReIDModel) and len(model.head_names) >= 1
    batch = _batch(recipe)
    model.train()
    losses = model.loss(model(batch), batch)
    total = losses["total"]
    assert total.ndim == 0 and torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        feat = model.embed(batch)
    assert feat.ndim == 3 and feat.shape[:2] == (8, len(model.head_names)) and torch.isfinite(feat).all()
