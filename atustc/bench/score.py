"""Score a trained run: embed its test rows with the last checkpoint and write its eval files.

:func:`score_run` writes ``RUN/eval/<protocol>@last.json`` (with provenance) and the per-query
results beside it, for every protocol the bench's split is scored on (:func:`split_protocols`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from atustc.bench.data import BenchData
from atustc.runfolder import RunFolder
from atustc.split.protocols import SplitProtocols

#: Length of the top lists kept in each run's per-query results (``RUN/eval/<protocol>@last.per_query.parquet``).
PER_QUERY_TOP_K = 10
#: The checkpoint the harness scores (the last epoch, for every method alike).
CHECKPOINT: Literal["last"] = "last"


@dataclass(frozen=True)
class SplitInfo:
    """What the bench reads from its split's ``split.json``: the dataset and the protocols it scores."""

    dataset: str
    scored: tuple[str, ...]


def split_protocols(data: BenchData) -> SplitInfo:
    """The dataset and the protocols the bench's split is scored on (``split.json``; AT-USTC's for older splits)."""
    from atustc.io import read_json

    path = data.split_dir / "split.json"
    info = read_json(path)
    return SplitInfo(str(info.get("dataset", "atustc")), SplitProtocols.from_info(info, str(path)).scored)


def score_run(
    run: Path,
    data: BenchData,
    protocols: Sequence[str] | None = None,
    *,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, dict]:
    """Embed the test rows with the run's last checkpoint; write ``RUN/eval/<protocol>@last.json`` for each protocol.

    ``protocols`` default to the split's scored ones. Each JSON carries its provenance (checkpoint
    and its sha256, the features' hash, the protocol file's hash). A method with set-dependent
    scoring (:attr:`~atustc.methods.MethodSpec.scoring`) is scored with it, recorded as ``scoring``.
    """
    import numpy as np

    from atustc.engine import embed_run, run_scoring
    from atustc.evaluate import evaluate, needed_rows
    from atustc.io import atomic_path, write_json_atomic
    from atustc.protocol import load_protocol
    from atustc.provenance import checkpoint_record, provenance
    from atustc.split import load_split

    folder = RunFolder(run)
    test = load_split(data.split_dir).test
    loaded = [load_protocol(name) for name in (protocols or split_protocols(data).scored)]
    rows = np.unique(np.concatenate([needed_rows(p, test) for p in loaded]))
    ckpt = checkpoint_record(folder, CHECKPOINT)
    features = embed_run(run, test.iloc[rows], data.root, checkpoint=CHECKPOINT, progress=progress, device=device)
    scoring = run_scoring(run)  # set-dependent scoring of the method (SAAI's affinity inference), if any
    results = {}
    for protocol in loaded:
        hook = scoring.hook() if scoring is not None else None
        result = evaluate(protocol, test, features, top_k=PER_QUERY_TOP_K, scores=hook)
        results[protocol.name] = {**result.to_dict(), "provenance": provenance(protocol, features, ckpt)}
        if scoring is not None:
            results[protocol.name]["scoring"] = scoring.describe()
        # the per-query results first: an eval file is never newer than what `leaderboard --compare` resamples
        with atomic_path(folder.per_query_file(protocol.name, CHECKPOINT)) as tmp:
            result.per_query.to_parquet(tmp, index=False)
        write_json_atomic(folder.eval_file(protocol.name, CHECKPOINT), results[protocol.name])
    return results
