"""Batch samplers: P identities x K images (modality-balanced or not) and plain random batches.

A :class:`BatchPlan` decides the *global* batch of every training iteration from ``(seed, epoch)``
alone, so the plan needs no state beyond the iteration counter to resume, and a distributed run
sees the same global batches as a single-process run. Each rank takes whole identities
(identities ``rank, rank + world, ...`` of every P x K batch), so batch-hard mining stays local.

``pk_modality`` follows the official sampler: identities are drawn uniformly without replacement
within a batch; for each, K/2 RGB and K/2 IR images, drawn with replacement only when that
modality has fewer than K/2 images. An identity that has images of one modality only gets all K
images from that modality (with replacement if it has fewer than K). ``pk`` draws K images of
each identity regardless of modality. ``random`` walks a fresh permutation of all rows per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np

from atustc.errors import AtustcError

SamplerKind = Literal["pk_modality", "pk", "random"]
SAMPLERS: tuple[str, ...] = ("pk_modality", "pk", "random")


class BatchPlan:
    """The global batch (row indices of the train table) of every iteration.

    Args:
        pid: contiguous person label of every row.
        modality: 0 (RGB) / 1 (IR) of every row.
        kind: ``pk_modality``, ``pk`` or ``random``.
        num_identities: P (for ``random``: the batch is P x K rows all the same).
        num_instances: K.
        iters_per_epoch: batches per epoch.
        seed: run seed.
        world: number of ranks the batch is shared across.

    Raises:
        AtustcError: the plan does not fit the data or the world size (see :meth:`check`).
    """

    def __init__(
        self,
        pid: np.ndarray,
        modality: np.ndarray,
        kind: SamplerKind,
        num_identities: int,
        num_instances: int,
        iters_per_epoch: int,
        seed: int,
        world: int = 1,
    ) -> None:
        self.kind = kind
        self.p, self.k = num_identities, num_instances
        self.iters_per_epoch = iters_per_epoch
        self.seed = seed
        self.world = world
        self.num_rows = len(pid)
        order = np.argsort(pid, kind="stable")
        bounds = np.flatnonzero(np.diff(pid[order])) + 1
        self._rows = np.split(order, bounds)  # per identity label, rows in table order
        self._rgb = [r[modality[r] == 0] for r in self._rows]
        self._ir = [r[modality[r] == 1] for r in self._rows]
        self.check()
        self._cache: tuple[int, np.ndarray] | None = None

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    def check(self) -> None:
        """Raise :class:`AtustcError` if the batch cannot be drawn from the data."""
        if self.kind not in SAMPLERS:
            raise AtustcError(f"recipe: unknown sampler {self.kind!r}; expected one of {', '.join(SAMPLERS)}")
        n_ids = len(self._rows)
        if self.kind == "random":
            if self.batch_size > self.num_rows:
                raise AtustcError(f"batch of {self.batch_size} images is larger than the {self.num_rows} train images")
            if self.batch_size % self.world:
                raise AtustcError(f"batch size {self.batch_size} is not divisible by {self.world} processes")
            return
        if self.p > n_ids:
            raise AtustcError(
                f"preset needs P={self.p} identities per batch but the train table has {n_ids}; "
                f"lower it with --set num_identities=N"
            )
        if self.p % self.world:
            raise AtustcError(f"P={self.p} identities per batch is not divisible by {self.world} processes")
        if self.kind == "pk_modality":
            both = sum(1 for r, i in zip(self._rgb, self._ir) if len(r) and len(i))
            if both < self.p:
                raise AtustcError(
                    f"sampler pk_modality needs at least P={self.p} identities with both RGB and IR train images "
                    f"(K/2={self.k // 2} of each); the train table has {both}; use --set sampler=pk"
                )

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """All global batches of ``epoch`` as an int64 array [iters_per_epoch, P*K]."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        if self.kind == "random":
            need = self.iters_per_epoch * self.batch_size
            perms = [rng.permutation(self.num_rows) for _ in range(-(-need // self.num_rows))]
            out = np.concatenate(perms)[:need].reshape(self.iters_per_epoch, self.batch_size)
        else:
            out = np.empty((self.iters_per_epoch, self.batch_size), dtype=np.int64)
            for b in range(self.iters_per_epoch):
                ids = rng.choice(len(self._rows), size=self.p, replace=False)
                out[b] = np.concatenate([self._draw(int(i), rng) for i in ids])
        self._cache = (epoch, out.astype(np.int64))
        return self._cache[1]

    def _draw(self, ident: int, rng: np.random.Generator) -> np.ndarray:
        k = self.k
        rgb, ir = self._rgb[ident], self._ir[ident]
        if self.kind == "pk_modality" and len(rgb) and len(ir):
            half = k // 2
            return np.concatenate(
                [rng.choice(rgb, size=half, replace=len(rgb) < half), rng.choice(ir, size=half, replace=len(ir) < half)]
            )
        rows = self._rows[ident]
        return rng.choice(rows, size=k, replace=len(rows) < k)

    def batch(self, it: int) -> np.ndarray:
        """Global batch of iteration ``it`` (0-based over the whole run)."""
        return self.epoch_batches(it // self.iters_per_epoch)[it % self.iters_per_epoch]

    def shard(self, values: np.ndarray, rank: int) -> np.ndarray:
        """The part of a global batch-shaped array that ``rank`` gets: whole identities (or every world-th row)."""
        if self.world == 1:
            return values
        if self.kind == "random":
            return values[rank :: self.world]
        return values.reshape(self.p, self.k)[rank :: self.world].reshape(-1)


class BatchStream:
    """``batch_sampler`` for a DataLoader: ``(row, augmentation seed)`` lists for iterations [start, stop).

    The augmentation seeds of iteration ``it`` come from ``(seed, it)``, so each sample is augmented the
    same way whatever the number of workers or ranks, and after a resume.
    """

    def __init__(self, plan: BatchPlan, start: int, stop: int, rank: int = 0) -> None:
        self.plan, self.start, self.stop, self.rank = plan, start, stop, rank

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for it in range(self.start, self.stop):
            rows = self.plan.batch(it)
            seeds = np.random.default_rng([self.plan.seed, 1, it]).integers(0, 2**62, size=len(rows))
            rows, seeds = self.plan.shard(rows, self.rank), self.plan.shard(seeds, self.rank)
            yield [(int(r), int(s)) for r, s in zip(rows, seeds)]


def choose_sampler(kind: SamplerKind, modality: np.ndarray, explicit: bool = False) -> tuple[SamplerKind, str | None]:
    """The sampler a run uses on its train table, and a note when it is not the recipe's.

    A recipe's ``pk_modality`` becomes ``pk`` on a single-modality train table (Market-1501, PRCC,
    ...: no IR, or no RGB, image at all), where there is no second modality to balance; a sampler
    set explicitly (``--set sampler=...``) is kept, and :meth:`BatchPlan.check` judges it.
    """
    if kind != "pk_modality" or explicit or len(np.unique(modality)) > 1:
        return kind, None
    only = "RGB" if len(modality) == 0 or int(modality[0]) == 0 else "IR"
    return "pk", f"sampler pk_modality -> pk: the train table has {only} images only"
