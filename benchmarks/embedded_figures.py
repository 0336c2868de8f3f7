"""Figures of the embedded benchmark (issue 11): chance, trained vs untrained, difficulty order, colour probe.

On the embedded synthetic dataset that ``atustc bench`` builds (``--synth-size``, default
``default``) and the ``atustc`` protocol, prints per scenario (R1 / mAP, %):

- ``random``: random Gaussian features, mean of 3 draws (chance on this protocol);
- ``colour``: the hand-crafted colour embedding of :mod:`atustc.synth.probe` (no learning);
- for every finished run under ``--runs``: the run's scores (``RUN/eval/atustc@last.json``, what the bench scores) and those
  of the same model untrained (built with the run's seed, ImageNet stem, nothing else learned),
  and the checks of issue 11: trained >= 3x random R1 in every scenario, Any-Time R1 >= 25,
  trained above untrained on Any-Time mAP, DT-ST > NT-ST > AD-ST and ST > LT within DT/NT/AD.

Usage::

    ATUSTC_CACHE=/tmp/cache python benchmarks/embedded_figures.py --runs runs [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SCEN = ("DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT")


def _scores(result: dict) -> dict[str, tuple[float, float]]:
    rows = {**result["scenarios"], **result.get("summary", {})}
    return {k: (100 * v["R1"], 100 * v["mAP"]) for k, v in rows.items()}


def _evaluate(test, feat: np.ndarray, relpath: np.ndarray) -> dict[str, tuple[float, float]]:
    from atustc.evaluate import evaluate
    from atustc.features import Features
    from atustc.protocol import load_protocol

    features = Features(relpath=relpath.astype(str), heads=("global",), feat=feat[:, None, :].astype(np.float32))
    return _scores(evaluate(load_protocol("atustc"), test, features).to_dict())


def _mean(runs: list[dict[str, tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    return {k: tuple(float(np.mean([r[k][i] for r in runs])) for i in (0, 1)) for k in runs[0]}


def _untrained(run: Path, test, root: Path) -> dict[str, tuple[float, float]]:
    import torch

    from atustc.engine.config import recipe_from_dict
    from atustc.engine.data import LabelMaps
    from atustc.engine.embed import extract_features
    from atustc.evaluate import evaluate
    from atustc.methods import get_method
    from atustc.protocol import load_protocol

    cfg = json.loads((run / "config.json").read_text())
    torch.manual_seed(int(cfg["seed"]))
    labels = LabelMaps.from_dict(cfg["labels"])
    model = get_method(cfg["method"]).create(labels.space, cfg["preset"], None).eval()
    feats = extract_features(
        model, test.reset_index(drop=True), root, recipe_from_dict(cfg["recipe"]), labels, torch.device("cpu"), 128
    )
    return _scores(evaluate(load_protocol("atustc"), test, feats).to_dict())


def _line(name: str, s: dict[str, tuple[float, float]]) -> str:
    cells = " | ".join(f"{s[k][0]:.1f} / {s[k][1]:.1f}" for k in (*SCEN, "Any-Time"))
    return f"| {name} | {cells} |"


def _checks(trained: dict, untrained: dict, chance: dict) -> list[str]:
    r1 = {k: trained[k][0] for k in (*SCEN, "Any-Time")}
    worst = min(r1[k] / max(chance[k][0], 1e-9) for k in SCEN)
    at, un = trained["Any-Time"][1], untrained["Any-Time"][1]
    return [
        f"3x chance R1 in every scenario: {all(r1[k] >= 3 * chance[k][0] for k in SCEN)} (worst ratio {worst:.1f}x)",
        f"no scenario at 0 R1: {all(r1[k] > 0 for k in SCEN)}",
        f"Any-Time R1 >= 25: {r1['Any-Time'] >= 25} ({r1['Any-Time']:.1f})",
        f"beats untrained on Any-Time mAP: {at > un} ({at:.1f} vs {un:.1f})",
        f"DT-ST > NT-ST > AD-ST: {r1['DT-ST'] > r1['NT-ST'] > r1['AD-ST']}",
        f"ST > LT in DT, NT, AD: {all(r1[f'{m}-ST'] > r1[f'{m}-LT'] for m in ('DT', 'NT', 'AD'))}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="bench runs folders")
    parser.add_argument("--synth-size", default="default")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)

    from atustc.bench.harness import ensure_synthetic
    from atustc.split import load_split
    from atustc.synth import SynthConfig
    from atustc.synth.probe import band_features_of

    data = ensure_synthetic(SynthConfig.named(args.synth_size), progress=False)
    test = load_split(data.split_dir).test
    rel = test["relpath"].to_numpy()
    rng = np.random.default_rng(0)
    chance = _mean([_evaluate(test, rng.standard_normal((len(test), 64)), rel) for _ in range(args.draws)])
    colour = _evaluate(test, band_features_of(data.root, rel), rel)
    figures = {"chance": chance, "colour": colour, "runs": {}}
    header = "| features | " + " | ".join((*SCEN, "Any-Time")) + " |"
    print(f"R1 / mAP (%), protocol atustc, synth size {args.synth_size}, {len(test)} test images")
    print(header)
    print("|" + " --- |" * (len(SCEN) + 2))
    print(_line(f"random (mean of {args.draws})", chance))
    print(_line("colour bands (hand-crafted)", colour))
    checks = {}
    for runs_dir in args.runs:
        for run in sorted(p for p in runs_dir.iterdir() if (p / "eval" / "atustc@last.json").is_file()):
            trained = _scores(json.loads((run / "eval" / "atustc@last.json").read_text()))
            untrained = _untrained(run, test, data.root)
            figures["runs"][run.name] = {"trained": trained, "untrained": untrained}
            print(_line(f"{run.name} trained", trained))
            print(_line(f"{run.name} untrained", untrained))
            checks[run.name] = _checks(trained, untrained, chance)
    for name, lines in checks.items():
        print(f"\n{name}:")
        for line in lines:
            print(f"  {line}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
