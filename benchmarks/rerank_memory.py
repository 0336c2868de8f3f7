"""Time and peak memory of k-reciprocal re-ranking (:mod:`atustc.rerank`) at N = 5k, 20k, 50k.

N images (query + gallery; a fifth of them queries, the rest gallery, about MSMT17's and
Market-1501's ratio) with 768-d clustered features (identities of 10 images around random centres,
so that k-reciprocal sets have realistic sizes), re-ranked with the paper's ``k1=20,k2=6,lambda=0.3``
and ranked by the exact ranking core (:func:`atustc.ranking.rank_chunks`), as ``atustc eval
--rerank`` does. Each size runs in a fresh subprocess that reports its wall time (encoding,
scoring + ranking), the process's CPU time (user + system, all threads; on a shared machine the
wall time mostly measures the load) and its peak resident memory (``ru_maxrss``, the whole Python process with torch
loaded). Targets: N = 50,000 under 2 GB and within 10 minutes on 2 cores. The dense ports of
torchreid and FastReID need about 20-24·N² bytes (50 GB at N = 50k).

Run: ``.venv/bin/python benchmarks/rerank_memory.py [--sizes 5000,20000,50000] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

DIM = 768
PER_ID = 10


def one(n: int, threads: int) -> dict:
    """Re-rank and rank one size in this process; returns the figures."""
    import numpy as np
    import torch

    from atustc.ranking import rank_chunks, summarize
    from atustc.rerank import RerankConfig, Reranker

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    n_id = n // PER_ID
    pid = np.repeat(np.arange(n_id), PER_ID)[:n]
    centres = rng.standard_normal((n_id, DIM), dtype=np.float32)
    x = centres[pid] + 3.0 * rng.standard_normal((n, DIM), dtype=np.float32)
    del centres
    is_query = np.zeros(n, dtype=bool)
    is_query[rng.choice(n, n // 5, replace=False)] = True
    q, g = torch.from_numpy(x[is_query]), torch.from_numpy(x[~is_query])
    q_pid, g_pid = torch.from_numpy(pid[is_query]), torch.from_numpy(pid[~is_query])
    del x
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    rr = Reranker(q, g, RerankConfig())
    t1 = time.perf_counter()
    qm = rank_chunks(lambda rows: -rr.distances(rows), q_pid, g_pid)
    t2 = time.perf_counter()
    s = summarize(qm)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "N": n,
        "queries": int(q.shape[0]),
        "gallery": int(g.shape[0]),
        "dim": DIM,
        "threads": threads,
        "nnz_V": int(rr.vals.numel()),
        "encode_s": round(t1 - t0, 1),
        "score_rank_s": round(t2 - t1, 1),
        "total_s": round(t2 - t0, 1),
        "process_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "rss_before_mb": round(base_rss),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "R1": round(float(s.cmc[0]), 4),
        "mAP": round(float(s.mAP), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000,50000")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.threads)))
        return
    for n in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--threads", str(args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
