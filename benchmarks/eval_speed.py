"""Evaluation speed and memory of ``atustc.evaluate`` (the exact chunked ranking engine).

Part 1 (AT-USTC scale): two pools (short-term, long-term) of 5,000 queries x 5,000 gallery
images, 768-d features under six heads, all six scenarios of ``protocols/atustc.toml``. The engine
is timed against a per-query loop that follows the official code structure for structure (full
distance matrix and full argsort per scenario, then a Python loop over queries removing junk on
the sorted list; see :func:`official_loop`), in the same process on the same features; the
numbers must agree (valid-query counts and CMC exactly, mAP / mINP to 1e-12) and the engine must
be at least 25x faster.

Part 2 (scaling): one scenario with N queries x N gallery images (N = 5k, 10k, 20k, 50k; no
modality block split, so the full N x N matrix is ranked), each size in a fresh subprocess that
reports its wall time and peak resident memory (``ru_maxrss``); the target is < 2 GB at 50k.

Run: ``.venv/bin/python benchmarks/eval_speed.py [--part 1|2|all] [--sizes 5000,10000,20000,50000]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

HEADS = ("DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT")
DIM = 768


def make_table(
    n_query: int, n_gallery: int, seed: int = 0, n_pid: int = 135, pools: tuple[str, ...] = ("st", "lt")
) -> pd.DataFrame:
    """An AT-USTC-shaped test table: per pool, n_query query and n_gallery gallery images."""
    from atustc.table import validate_table

    rng = np.random.default_rng(seed)
    flags = {"st": ((2, 4), (6, 8)), "lt": ((3, 5), (7, 9))}
    parts = []
    for pool in pools:
        (q_rgb, q_ir), (g_rgb, g_ir) = flags[pool]
        for n, rgb_flag, ir_flag in ((n_query, q_rgb, q_ir), (n_gallery, g_rgb, g_ir)):
            pid = rng.integers(1, n_pid + 1, n)
            camera = rng.integers(1, 17, n)
            ir = camera > 8
            parts.append(
                pd.DataFrame(
                    {
                        "pid": pid,
                        "clothes": rng.integers(1, 4, n),
                        "camera": camera,
                        "modality": np.where(ir, "ir", "rgb"),
                        "flag": np.where(ir, ir_flag, rgb_flag),
                    }
                )
            )
    df = pd.concat(parts, ignore_index=True)
    n = len(df)
    df["dataset"] = "atustc"
    df["relpath"] = [f"img/{i:07d}.jpg" for i in range(n)]
    df["date"] = 1
    df["frame"] = np.arange(n)
    df["split"] = "test"
    return validate_table(df)


def make_features(table: pd.DataFrame, heads: tuple[str, ...], seed: int = 0, noise: float = 2.5):
    """Identity + outfit centres plus ``noise`` x Gaussian noise, per head (more noise = weaker model)."""
    from atustc.features import Features

    rng = np.random.default_rng(seed)
    n = len(table)
    pid = table["pid"].to_numpy()
    outfit = pid * 4 + table["clothes"].to_numpy()
    feat = np.empty((n, len(heads), DIM), dtype=np.float32)
    for h in range(len(heads)):
        ids = rng.standard_normal((pid.max() + 1, DIM), dtype=np.float32)
        outfits = rng.standard_normal((outfit.max() + 1, DIM), dtype=np.float32)
        feat[:, h] = ids[pid]
        feat[:, h] += 0.8 * outfits[outfit]
        feat[:, h] += noise * rng.standard_normal((n, DIM), dtype=np.float32)
    return Features(table["relpath"].to_numpy().astype(str), heads, feat)


# The official test (kw66/AT-ReID others/test.py + others/eval.py), written the plain way:
# scenario -> (pool, mode1, mode2); head h scores scenario h.
OFFICIAL = {
    "DT-ST": ("st", "vm", "sc"),
    "DT-LT": ("lt", "vm", "cc"),
    "NT-ST": ("st", "im", "sc"),
    "NT-LT": ("lt", "im", "cc"),
    "AD-ST": ("st", "cm", "sc"),
    "AD-LT": ("lt", "cm", "cc"),
}


def official_loop(table: pd.DataFrame, features) -> dict[str, dict]:
    """The official per-query evaluation, structure for structure.

    Per scenario: the full distance matrix (``-mm`` of L2-normalised features), a full argsort of
    it, the full sorted match matrix, then a Python loop over queries that builds the remove
    masks on the sorted gallery and computes CMC and AP from the kept matches, AP with the
    official per-element precision list. Differences from the official code, all needed to
    compare exactly: a stable argsort (the documented tie-break), float64 CMC accumulation, and
    mINP (which the official code does not compute).
    """
    import torch

    flags = {"st": ((2, 4), (6, 8)), "lt": ((3, 5), (7, 9))}
    out = {}
    for h, (name, (pool, mode1, mode2)) in enumerate(OFFICIAL.items()):
        q = table[table["flag"].isin(flags[pool][0])]
        g = table[table["flag"].isin(flags[pool][1])]
        qf = torch.nn.functional.normalize(torch.from_numpy(features.feat[q.index.to_numpy(), h]), p=2, dim=1)
        gf = torch.nn.functional.normalize(torch.from_numpy(features.feat[g.index.to_numpy(), h]), p=2, dim=1)
        distmat = -torch.mm(qf, gf.t()).numpy()
        q_pids, q_cids, q_camids = (q[c].to_numpy() for c in ("pid", "clothes", "camera"))
        g_pids, g_cids, g_camids = (g[c].to_numpy() for c in ("pid", "clothes", "camera"))
        q_mids = np.where(q["modality"].to_numpy() == "rgb", 1, 2)
        g_mids = np.where(g["modality"].to_numpy() == "rgb", 1, 2)
        indices = np.argsort(distmat, axis=1, kind="stable")
        matches = (g_pids[indices] == q_pids[:, None]).astype(np.int64)
        all_cmc, all_ap, all_inp = [], [], []
        for i in range(len(q)):
            order = indices[i]
            g_pid, g_cid, g_mid, g_camid = g_pids[order], g_cids[order], g_mids[order], g_camids[order]
            remove = (q_pids[i] == g_pid) & (q_camids[i] == g_camid)
            if mode1 == "vm":
                remove |= (q_mids[i] != 1) | (g_mid != 1)
            elif mode1 == "im":
                remove |= (q_mids[i] != 2) | (g_mid != 2)
            else:
                remove |= ((q_mids[i] == 1) & (g_mid == 1)) | ((q_mids[i] == 2) & (g_mid == 2))
            if mode2 == "sc":
                remove |= (q_pids[i] == g_pid) & (q_cids[i] != g_cid)
            else:
                remove |= (q_pids[i] == g_pid) & (q_cids[i] == g_cid)
            kept = matches[i][~remove]
            if not kept.any():
                continue
            cmc = kept.cumsum()
            cmc[cmc > 1] = 1
            all_cmc.append(cmc[:20])
            precision = [x / (k + 1.0) for k, x in enumerate(kept.cumsum())]
            all_ap.append((np.asarray(precision) * kept).sum() / kept.sum())
            all_inp.append(kept.sum() / (np.flatnonzero(kept)[-1] + 1.0))
        n_valid = len(all_ap)
        cmc = np.asarray(all_cmc, dtype=np.float64).sum(0) / n_valid
        out[name] = {
            "R1": cmc[0],
            "R5": cmc[4],
            "R10": cmc[9],
            "R20": cmc[19],
            "mAP": float(np.mean(all_ap)),
            "mINP": float(np.mean(all_inp)),
            "valid_queries": n_valid,
        }
    return out


def part1(n: int = 5000) -> None:
    import torch

    from atustc.evaluate import evaluate, print_result
    from atustc.protocol import load_protocol

    print(f"== part 1: AT-USTC scale, 2 pools of {n} x {n}, {DIM}-d, {len(HEADS)} heads, 6 scenarios")
    table = make_table(n, n)
    features = make_features(table, HEADS, noise=3.5)  # R1 46-87 %, mAP 20-63 %: a realistic model
    protocol = load_protocol("atustc")
    small = make_table(100, 100)
    evaluate(protocol, small, make_features(small, HEADS))  # warm-up (imports, thread pools)
    threads = torch.get_num_threads()
    times = {}
    for n_threads in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(n_threads)
        t0 = time.perf_counter()
        engine = evaluate(protocol, table, features)
        times[n_threads] = time.perf_counter() - t0
    torch.set_num_threads(threads)
    result = engine.to_dict()
    t0 = time.perf_counter()
    ref = official_loop(table, features)
    t_loop = time.perf_counter() - t0
    worst = 0.0
    for name, r in ref.items():
        got = result["scenarios"][name]
        assert got["valid_queries"] == r["valid_queries"], (name, got, r)
        for k in ("R1", "R5", "R10", "R20"):
            assert got[k] == r[k], (name, k, got[k], r[k])
        for k in ("mAP", "mINP"):
            worst = max(worst, abs(got[k] - r[k]))
    assert worst <= 1e-12, worst
    print_result(engine)
    for n_threads, seconds in times.items():
        print(
            f"engine (atustc.evaluate, 6 scenarios), {n_threads} torch thread(s): {seconds:.2f} s -> {t_loop / seconds:.1f}x"
        )
    print(f"official-structure per-query loop: {t_loop:.2f} s")
    print(f"target >= 25x; identical: valid counts and CMC exact, max |d mAP|, |d mINP| = {worst:.1e}")


def one_size(n: int) -> dict:
    """Run one N x N scenario and report time and peak RSS (called in a fresh subprocess)."""
    import torch  # noqa: F401  (torch itself is part of the baseline, not of the evaluation)

    from atustc.evaluate import evaluate
    from atustc.protocol import parse_protocol

    table = make_table(n, n, pools=("st",), n_pid=max(135, n // 40))
    features = make_features(table, ("global",), noise=3.5)
    protocol = parse_protocol(
        {
            "scenarios": {
                "AD-ST-mixed": {
                    "query": {"flag": [2, 4]},
                    "gallery": {"flag": [6, 8]},
                    "head": "global",
                    "junk": [{"rule": "clothes", "value": "same", "scope": "same_pid"}],
                }
            }
        },
        "scaling.toml",
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    row = evaluate(protocol, table, features).to_dict()["scenarios"]["AD-ST-mixed"]
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n": n,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "rss_before_eval_mb": rss_before,
        "mAP": row["mAP"],
        "valid": row["valid_queries"],
    }


def part2(sizes: list[int]) -> None:
    print("== part 2: one scenario, N queries x N gallery (full matrix), fresh process per size")
    print(f"{'N':>7} {'time (s)':>9} {'cells/s':>10} {'peak RSS (MB)':>14} {'RSS before eval':>16} {'mAP':>8}")
    for n in sizes:
        code = f"import json, sys; sys.path.insert(0, 'benchmarks'); import eval_speed; print(json.dumps(eval_speed.one_size({n})))"
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            f"{n:>7} {r['seconds']:>9.2f} {n * n / r['seconds']:>10.3g} {r['peak_rss_mb']:>14.0f} {r['rss_before_eval_mb']:>16.0f} {r['mAP']:>8.4f}"
        )
        if n >= 50000:
            assert r["peak_rss_mb"] < 2048, "peak memory target (< 2 GB) missed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["1", "2", "all"], default="all")
    ap.add_argument("--sizes", default="5000,10000,20000,50000")
    args = ap.parse_args()
    if args.part in ("1", "all"):
        part1()
    if args.part in ("2", "all"):
        part2([int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
