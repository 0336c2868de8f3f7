"""Is a gap between two leaderboard rows real? Paired bootstrap intervals over queries and over runs.

For two rows A and B (each one or more run folders: seeds and/or splits) and a scenario, the
difference ``A - B`` of mAP or R1 gets two 95 % percentile-bootstrap intervals (Efron &
Tibshirani, "An Introduction to the Bootstrap", 1993; paired resampling of test queries as in
Koehn, EMNLP 2004, for MT and used for retrieval by Sakai, SIGIR 2006):

* **over queries**: the queries (the same for A and B on a split: the protocol fixes them) are
  resampled with replacement, paired, and A's and B's metrics are recomputed on each resample.
  On each split the per-query values of a row are first averaged over its seeds; with several
  strata (splits, or the trials/directions of a scenario) each stratum is resampled on its own
  and the statistic is the mean over strata, the way the leaderboard averages them. This says how
  much the gap would move with another draw of test queries.
* **over runs** (only where both rows have at least :data:`MIN_RUNS` finished runs): the runs are
  resampled, paired by (split, seed) when both rows hold the same set, independently otherwise.
  This says how much the gap would move with another seed or another split. With two runs a
  percentile bootstrap can only return the range of the two differences (it once printed a
  zero-width interval for two equal gaps), so it is not reported; with three to five it is coarse.

Per-query values come from the per-query results stored with each run
(``RUN/eval/<protocol>.per_query.parquet``, see :mod:`atustc.evaluate`), not from re-embedding:
the leaderboard needs no model, no images and no GPU, and the per-query file belongs to the very
evaluation whose JSON the row reports (checked: its mean must equal the JSON's metric).

Everything here is pure numpy, vectorised over resamples and deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atustc.errors import AtustcError

#: Resamples per interval.
N_BOOT = 2000
#: Confidence level of the intervals.
LEVEL = 0.95
#: Runs per row needed for the interval over runs.
MIN_RUNS = 3
_BLOCK = 1 << 22  # resample cells per vectorised step


@dataclass(frozen=True)
class Interval:
    """A difference and its percentile-bootstrap interval (``low == high == diff`` when it cannot move)."""

    diff: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies strictly on one side of 0."""
        return self.low > 0 or self.high < 0


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def _boot_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``values`` ``[n]``, in blocks of resamples."""
    n = values.size
    out = np.empty(n_boot)
    step = max(1, _BLOCK // max(n, 1))
    for a in range(0, n_boot, step):
        b = min(a + step, n_boot)
        out[a:b] = values[rng.integers(0, n, (b - a, n))].mean(1)
    return out


def paired_bootstrap(
    diffs: list[np.ndarray] | np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL
) -> Interval:
    """Interval of the mean over strata of the mean per-item difference, items resampled within strata.

    Args:
        diffs: per-item paired differences ``a_i - b_i``: one array, or one array per stratum.
        n_boot: number of resamples.
        seed: seed of the resampling.
        level: confidence level.

    Returns:
        The observed difference and its percentile interval.

    Raises:
        AtustcError: no items, or a stratum without items.

    Example:
        >>> iv = paired_bootstrap(np.full(50, 0.25))
        >>> (iv.diff, iv.low, iv.high)
        (0.25, 0.25, 0.25)
    """
    strata = (
        [np.asarray(diffs, dtype=np.float64)]
        if isinstance(diffs, np.ndarray)
        else [np.asarray(d, dtype=np.float64) for d in diffs]
    )
    if not strata or any(d.size == 0 for d in strata):
        raise AtustcError("paired bootstrap: no paired items to resample")
    rng = np.random.default_rng(seed)
    observed = float(np.mean([d.mean() for d in strata]))
    samples = np.mean([_boot_means(d, n_boot, rng) for d in strata], axis=0)
    low, high = _percentiles(samples, level)
    return Interval(observed, min(low, observed), max(high, observed))


def run_bootstrap(
    a: np.ndarray, b: np.ndarray, *, paired: bool, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL
) -> Interval:
    """Interval of ``mean(a) - mean(b)`` over runs (seeds, splits), resampling runs.

    Args:
        a: per-run metric of row A.
        b: per-run metric of row B (same length and order when ``paired``).
        paired: resample run pairs together (same split and seed on both sides).
        n_boot, seed, level: as in :func:`paired_bootstrap`.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if paired:
        return paired_bootstrap(a - b, n_boot=n_boot, seed=seed, level=level)
    rng = np.random.default_rng(seed)
    samples = _boot_means(a, n_boot, rng) - _boot_means(b, n_boot, rng)
    observed = float(a.mean() - b.mean())
    low, high = _percentiles(samples, level)
    return Interval(observed, min(low, observed), max(high, observed))


@dataclass(frozen=True)
class RunQueries:
    """One run's per-query values on one scenario.

    Attributes:
        split: the run's split hash (queries are paired within a split).
        seed: the run's seed (None if unknown).
        values: per valid query, keyed by stratum (a scenario and its trial/direction number:
            one stratum per scenario for Any-Time) and query relpath: ``{stratum: {query: value}}``.
    """

    split: str
    seed: int | None
    values: dict[str, dict[str, float]]

    def metric(self) -> float:
        """The run's metric: mean over its strata of the mean over valid queries."""
        return float(np.mean([np.mean(list(v.values())) for v in self.values.values()]))


@dataclass(frozen=True)
class Comparison:
    """``A - B`` on one scenario and metric."""

    a: float
    b: float
    queries: Interval
    runs: Interval | None
    n_queries: int
    n_runs: tuple[int, int]


def compare_rows(
    a: list[RunQueries], b: list[RunQueries], *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL
) -> Comparison:
    """Compare two rows' runs on one scenario (see the module docstring).

    Raises:
        AtustcError: the rows share no split, or a split's queries differ between them.
    """
    splits = sorted({r.split for r in a} & {r.split for r in b})
    if not splits:
        raise AtustcError("--compare: the two rows share no split (their queries cannot be paired)")
    strata = []
    for split in splits:
        ra, rb = [r for r in a if r.split == split], [r for r in b if r.split == split]
        for run in sorted(ra[0].values):
            qa, qb = _seed_mean(ra, run, split), _seed_mean(rb, run, split)
            if qa.keys() != qb.keys():
                raise AtustcError(f"--compare: split {split[:8]}: the rows were scored on different queries")
            keys = sorted(qa)
            strata.append(np.array([qa[k] for k in keys]) - np.array([qb[k] for k in keys]))
    queries = paired_bootstrap(strata, n_boot=n_boot, seed=seed, level=level)
    runs = None
    if len(a) >= MIN_RUNS and len(b) >= MIN_RUNS:
        key = lambda r: (r.split, r.seed)  # noqa: E731
        paired = sorted(map(key, a), key=str) == sorted(map(key, b), key=str) and len(set(map(key, a))) == len(a)
        order_a, order_b = sorted(a, key=lambda r: str(key(r))), sorted(b, key=lambda r: str(key(r)))
        runs = run_bootstrap(
            np.array([r.metric() for r in order_a]),
            np.array([r.metric() for r in order_b]),
            paired=paired,
            n_boot=n_boot,
            seed=seed,
            level=level,
        )
    ma = float(np.mean([np.mean([r.metric() for r in a if r.split == s]) for s in splits]))
    mb = float(np.mean([np.mean([r.metric() for r in b if r.split == s]) for s in splits]))
    return Comparison(ma, mb, queries, runs, sum(s.size for s in strata), (len(a), len(b)))


def _seed_mean(runs: list[RunQueries], stratum: str, split: str) -> dict[str, float]:
    """Per-query values averaged over the seeds of one split (the seeds must share the queries)."""
    first = runs[0].values.get(stratum, {})
    for r in runs[1:]:
        if r.values.get(stratum, {}).keys() != first.keys():
            raise AtustcError(f"--compare: split {split[:8]}: runs of one row were scored on different queries")
    return {q: float(np.mean([r.values[stratum][q] for r in runs])) for q in first}
