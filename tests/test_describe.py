"""Model sizes of ``atustc bench --list`` (atustc.methods.describe) against hand-counted architectures."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from atustc.errors import AtustcError
from atustc.methods import Batch, LabelSpace, MethodSpec, get_method
from atustc.methods.describe import ModelSize, format_size, model_size

R50 = 23_508_032  # timm/torchvision ResNet-50 without its fc
C = 2048  # ResNet-50 channels
NL_L2, NL_L3 = 3 * 513 + 2 * 512 + 2 * 512, 3 * 1025 + 2 * 1024 + 2 * 1024  # rank-1 non-local blocks (θ, φ, g, W, BN)
IR_STEM = 64 * 3 * 7 * 7 + 2 * 64

#: (label-free parameters, per person, per outfit, embedding D) of the paper architectures, by hand.
PAPER = {
    # ResNet-50 (last stride 1) + BNNeck (BN weight and frozen bias); per person: classifier (no bias) + centre
    "bot": (R50 + 2 * C, 2 * C, 0, C),
    # + 2 non-local blocks in layer2, 3 in layer3, the IR stem's conv1 + bn1, GeM's p
    "agw": (R50 + 2 * NL_L2 + 3 * NL_L3 + IR_STEM + 1 + 2 * C, 2 * C, 0, C),
    # shared 1x1 reduction 2,048 -> 256 (no bias) + BN; six Linear(256 -> #IDs) with bias; 6 x 2,048-d g
    "pcb": (R50 + C * 256 + 2 * 256, 6 * (256 + 1), 0, 6 * C),
    # BN over max+avg (4,096); ID classifier with bias; cosine clothes classifier
    "cal": (R50 + 2 * 2 * C, 2 * C + 1, 2 * C, 2 * C),
    # CAL + bias branch (ResNet-50, 15 region reductions, 3,840 -> 4,096, BN, clothes classifier)
    # + fusion (1x1 conv 2,048 -> 8 + BN, 16,384 -> 4,096, BN)
    "aim": (
        R50 + 4 * C + R50 + 15 * (C * 256 + 2 * 256) + 3840 * 2 * C + 4 * C + (C * 8 + 2 * 8) + 8 * C * 2 * C + 4 * C,
        2 * C + 1,
        2 * 2 * C,
        2 * C,
    ),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_cnn_sizes_match_hand_counts(name: str) -> None:
    params, per_pid, per_outfit, dim = PAPER[name]
    size = model_size(get_method(name), "paper")
    assert (size.params, size.per_pid, size.per_outfit, size.per_camera) == (params, per_pid, per_outfit, 0)
    assert (size.heads, size.embed_dim, size.preset) == (("global",), dim, "paper")


def test_bot_and_pcb_listing_cells() -> None:
    assert format_size(model_size(get_method("bot"), "paper")) == ("23.51M", "+4,096/id", "1x2,048")
    assert format_size(model_size(get_method("pcb"), "paper")) == ("24.03M", "+1,542/id", "1x12,288")
    # BoT at 751 training identities (Market-1501): 23.5 M + 751 x (classifier + centre)
    labels = LabelSpace(num_pids=751, num_outfits=751, outfit_to_pid=tuple(range(751)), num_cameras=6)
    assert model_size(get_method("bot"), "paper").total(labels) == R50 + 2 * C + 751 * 2 * C


def test_vit_methods_at_paper() -> None:
    tr = model_size(get_method("transreid"), "paper")
    # global + 4 JPM locals of 768, each a BNNeck classifier; SIE: one 768-d vector per camera
    assert (tr.embed_dim, tr.per_pid, tr.per_camera, tr.per_outfit) == (5 * 768, 5 * 768, 768, 0)
    base = model_size(get_method("uniat-baseline"), "paper")
    assert (base.heads[0], len(base.heads), base.embed_dim, base.per_pid) == ("DT-ST", 6, 768, 6 * 768)
    said = model_size(get_method("uniat-said"), "paper")  # SAID: ST classifiers over outfits
    assert (said.per_pid, said.per_outfit) == (3 * 768, 3 * 768)


def _batch(n: int, size: tuple[int, int]) -> Batch:
    z = torch.zeros(n, dtype=torch.long)
    return Batch(images=torch.randn(n, 3, *size), pid=z, outfit=z, modality=z, camera=z)


@pytest.mark.parametrize("name", ["bot", "transreid", "uniat-baseline"])
def test_meta_count_equals_a_real_build(name: str) -> None:
    """The meta-device count is the count of the model as it is really built (tiny: cheap)."""
    labels = LabelSpace(num_pids=7, num_outfits=9, outfit_to_pid=(0, 1, 2, 3, 4, 5, 6, 0, 1), num_cameras=5)
    spec = get_method(name)
    torch.manual_seed(0)
    model = spec.build(labels, "tiny", None).eval()
    size = model_size(spec, "tiny")
    assert size.total(labels) == sum(p.numel() for p in model.parameters())
    emb = model.embed(_batch(2, spec.recipe("tiny").input_size))
    assert tuple(emb.shape) == (2, len(size.heads), size.embed_dim)


class _Odd(nn.Module):
    head_names = ("global",)

    def __init__(self, labels: LabelSpace) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2 * labels.num_pids, 3))


def _spec(build) -> MethodSpec:
    return MethodSpec(name="odd", family="Tr-ReID", summary="", build=build, recipe=get_method("bot").recipe)


def test_unattributable_parameter_is_an_error() -> None:
    with pytest.raises(AtustcError, match=r"method 'odd': parameter w \(10, 3\) does not scale with one label"):
        model_size(_spec(lambda labels, preset, pretrained: _Odd(labels)), "paper")
    # no embed_dim declared: shown as unknown
    size = ModelSize("x", "paper", 10, 0, 0, 0, ("global",), None)
    assert format_size(size) == ("0.00M", "-", "1x?")


def test_bench_list_shows_paper_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    from atustc.bench import methods_info
    from atustc.cli import cli

    row = {"name": "bot", "family": "Tr-ReID", "heads": "global", "params_tiny": 3_390_000,
           "recipe_tiny": "t", "recipe_paper": "p"}  # fmt: skip
    monkeypatch.setattr(methods_info, "describe_methods", lambda: [row])
    result = CliRunner().invoke(cli, ["bench", "--list"])
    assert result.exit_code == 0, result.output
    line = next(s for s in result.output.splitlines() if "│ bot" in s)
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells[:7] == ["bot", "Tr-ReID", "global", "3.39M", "23.51M", "+4,096/id", "1x2,048"]


def test_aim_tiny_size_is_the_paper_architecture_on_lite0() -> None:
    """AIM's 47.8 M tiny parameters: CAL's 3.4 M main branch + a second Lite0 bias branch + the fusion,
    every layer sized as at paper with C = 1,280 channels instead of 2,048 (44 M train-only)."""
    lite0, c = 3_371_008, 1280  # timm tf_efficientnet_lite0 without classifier
    cal = lite0 + 2 * 2 * c  # CAL's main branch: Lite0 + BN over max+avg
    bias_branch = lite0 + 15 * (c * 256 + 2 * 256) + 3840 * 2 * c + 2 * 2 * c
    fusion = (c * 8 + 2 * 8) + 8 * c * 2 * c + 2 * 2 * c  # the 10,240 -> 2,560 projection: 26.2 M
    aim = model_size(get_method("aim"), "tiny")
    assert aim.params == cal + bias_branch + fusion == 47_735_312
    assert (aim.per_pid, aim.per_outfit, aim.embed_dim) == (2 * c + 1, 2 * 2 * c, 2 * c)
