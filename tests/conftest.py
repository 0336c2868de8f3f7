"""Suite-wide settings and shared fixtures.

- Offline hub and a non-interactive matplotlib backend.
- ``pytest.ini_options.pythonpath`` puts the repository and ``tests/`` on ``sys.path``, so tests
  import ``engine_helpers`` directly; subprocesses get the same through :func:`subprocess_env`.
- ``slow``: tests over ~5 s (trainings, subprocesses) are marked, here for the modules that do
  not mark themselves (:data:`SLOW`); the fast lane is ``pytest -m "not slow"``.
- ``engine_method`` / ``engine_data``: the tiny engine test method, registered where it is not,
  and one small AT-USTC-like dataset (images, table, split) shared by the engine tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

#: ``module::test`` prefixes of the slow tests in modules that carry no ``slow`` marks themselves.
SLOW: tuple[str, ...] = (
    "test_engine_train.py::",
    "test_bench.py::",
    "test_eval_cli.py::test_run_end_to_end_with_the_engine",
    "test_eval_cli.py::test_eval_with_features_does_not_import_timm",
    "test_transreid.py::test_few_steps_lower_the_loss",
    "test_method_contract.py::test_every_method_honours_the_contract",
    "test_uniat.py::test_every_variant_builds_and_trains",
    "test_stats.py::test_csv_and_json_agree_with_frames",
    "test_stats.py::test_cli_process_imports_no_model_libraries",
    "test_moae.py::test_parameter_cost_matches_table2",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        node = item.nodeid.split("/")[-1]
        if any(node.startswith(prefix) for prefix in SLOW):
            item.add_marker(pytest.mark.slow)


def subprocess_env() -> dict[str, str]:
    """Environment of a test subprocess: the repository and ``tests/`` importable, hub offline."""
    path = os.pathsep.join([str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, HF_HUB_OFFLINE="1")


@pytest.fixture()
def engine_method() -> str:
    """The tiny engine test method (``engine_helpers.tiny_spec``), registered if it is not (it stays)."""
    from atustc.methods import is_registered, register_method
    from engine_helpers import METHOD, tiny_spec

    if not is_registered(METHOD):
        register_method(tiny_spec)
    return METHOD


@pytest.fixture(scope="session")
def engine_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """``(image root, table, split)`` of ``engine_helpers.make_dataset`` (16 identities), built once."""
    from engine_helpers import make_dataset

    return make_dataset(tmp_path_factory.mktemp("engine-data"))
