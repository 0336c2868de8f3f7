"""Suite-wide settings and shared fixtures.

- Offline hub and a non-interactive matplotlib backend.
- ``pytest.ini_options.pythonpath`` puts the repository and ``tests/`` on ``sys.path``, so tests
  import ``engine_helpers`` directly; subprocesses get the same through :func:`subprocess_env`.
- ``slow``: tests over ~5 s (trainings, subprocesses) and the heaviest of the rest are marked,
  here for the modules that do not mark themselves (:data:`SLOW`); the fast lane is
  ``pytest -m "not slow"``, under 60 s on two quiet cores.
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
    # The heaviest of the rest (about 0.5 s of CPU or more each, measured with per-test process
    # CPU time), so that the fast lane stays under 60 s on two quiet cores; a parametrised family
    # keeps its first cases in the fast lane.
    "test_stats.py::test_figures_written_and_non_trivial",
    "test_stats.py::test_random_table_matches_brute_force",
    "test_stats.py::test_svg_is_deterministic",
    "test_stats.py::test_duplicate_and_explicit_labels",
    "test_protocol.py::test_atustc_protocol_matches_official_rules[auto-",
    "test_protocol.py::test_atustc_protocol_matches_official_rules[dense-1]",
    "test_protocol.py::test_atustc_protocol_matches_official_rules[dense-2]",
    "test_protocol.py::test_atustc_protocol_matches_official_rules[dense-3]",
    "test_protocol.py::test_atustc_protocol_matches_official_rules[sparse-1]",
    "test_protocol.py::test_atustc_protocol_matches_official_rules[sparse-2]",
    "test_protocol.py::test_atustc_protocol_matches_official_rules[sparse-3]",
    "test_cnn_baselines.py::test_paper_architectures_match_the_published_sizes[a",
    "test_cnn_baselines.py::test_paper_architectures_match_the_published_sizes[cal]",
    "test_cnn_baselines.py::test_paper_architectures_match_the_published_sizes[pcb]",
    "test_cnn_baselines.py::test_tiny_embedding_sizes[aim",
    "test_cnn_baselines.py::test_aim_switch_fusion_and_main_branch_only_at_test",
    "test_cnn_baselines.py::test_bot_loss_and_center_optimiser_group",
    "test_cnn_baselines.py::test_pcb_stripes_loss_and_embedding",
    "test_compare.py::test_leaderboard_compare_cli",
    "test_synth.py::test_difficulty_ordering_matches_the_paper",
    "test_synth.py::test_same_seed_same_bytes_and_workers_do_not_matter",
    "test_synth.py::test_layout_names_and_pixels",
    "test_show.py::test_show_cmc_from_runs",
    "test_show.py::test_show_ranks_writes_a_deterministic_png",
    "test_split.py::test_cli_synth_index_split_end_to_end",
    "test_split.py::test_clip_rule_ignores_row_order_and_depends_on_seed",
    "test_lite0.py::test_timm_layout_round_trip",
    "test_lite0.py::test_trunk_stride_channels_and_weights[16",
    "test_baseline_blocks.py::test_resnet_loader_errors",
    "test_baseline_blocks.py::test_resnet_loader_reads_torchvision_and_timm_files[timm",
    "test_baseline_blocks.py::test_resnet50_last_stride_and_size",
    "test_index.py::test_index_command_imports_no_model_libraries",
    "test_uniat.py::test_classifier_sizes_follow_said",
    "test_transreid.py::test_sie_changes_output_with_camera",
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
