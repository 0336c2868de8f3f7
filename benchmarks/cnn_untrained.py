"""Any-Time R1/mAP of freshly built (untrained) models on the embedded default's test set.

The reference a trained run must beat: the model exactly as its builder returns it at the preset
(tiny: ImageNet Lite0 from the wheel, new heads with the builder's seeded init), embedded with the
recipe's test transform (flip averaging where the recipe asks for it) and scored on the
``atustc`` protocol as ``atustc bench`` scores a trained run.

    ATUSTC_CACHE=/tmp/cache python benchmarks/cnn_untrained.py --methods bot,pcb,agw,cal,aim
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def untrained_scores(name: str, preset: str, seed: int) -> dict[str, float]:
    from atustc.bench.harness import ensure_synthetic
    from atustc.engine.data import build_label_maps
    from atustc.engine.embed import extract_features
    from atustc.evaluate import evaluate, needed_rows
    from atustc.methods import get_method
    from atustc.protocol import load_protocol
    from atustc.split import load_split

    data = ensure_synthetic(progress=False)
    split = load_split(data.split_dir)
    labels = build_label_maps(split.train)
    spec = get_method(name)
    recipe = spec.recipe(preset)
    torch.manual_seed(seed)
    model = spec.create(labels.space, preset, None).eval()
    protocol = load_protocol("atustc")
    test = split.test
    rows = np.unique(needed_rows(protocol, test))
    feats = extract_features(model, test.iloc[rows].reset_index(drop=True), data.root, recipe, labels,
                             torch.device("cpu"), 64)  # fmt: skip
    anytime = evaluate(protocol, test, feats).to_dict()["summary"]["Any-Time"]
    return {"R1": float(anytime["R1"]), "mAP": float(anytime["mAP"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="bot,pcb,agw,cal,aim")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"untrained, preset {args.preset}, seed {args.seed}: Any-Time on atustc (%)")
    for name in args.methods.split(","):
        s = untrained_scores(name, args.preset, args.seed)
        print(f"{name:8} R1 {100 * s['R1']:6.2f}  mAP {100 * s['mAP']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
