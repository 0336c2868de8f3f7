"""Suite-wide settings and shared fixtures.

- Offline hub and a non-interactive matplotlib backend.
- ``pytest.ini_options.pythonpath`` puts the repository and ``tests/`` on ``sys.path``, so tests
  import ``engine_helpers`` directly; subprocesses get the same through :func:`subprocess_env`.
- ``slow``: tests over ~5 s (trainings, subprocesses) and the heaviest of the rest are marked,
  here for the modules that do not mark themselves (:data:`SLOW`); the fast lane is
  ``pytest -m "not slow"`` (56 s of CPU measured under load; the aim is under 60 s wall on two
  quiet cores).
- No cyclic garbage collection while the test modules are collected (they import torch, timm,
  pandas, scikit-learn: about 2 s of CPU in GC passes over those objects); afterwards what was
  imported is frozen out of every later pass (:func:`gc.freeze`) and collection is on again.
- ``engine_method`` / ``engine_data``: the tiny engine test method, registered where it is not,
  and one small AT-USTC-like dataset (images, table, split) shared by the engine tests.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

gc.disable()  # until pytest_collection_finish

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

#: ``module::test[case`` prefixes of the slow tests in modules that carry no ``slow`` marks themselves,
#: and of single cases of parametrised families.
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
    # CPU time), so that the fast lane stays near 60 s of CPU; a parametrised family keeps some of
    # its cases in the fast lane (the full suite runs them all).
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
    "test_transreid.py::test_pretrained_loading_reuses_the_vit_loader",
    "test_transreid.py::test_shapes_and_embedding",
    "test_stats.py::test_plot_functions_draw_on_a_given_axes",
    "test_stats.py::test_outfits_dates_panel_and_combined_layout",
    "test_stats.py::test_cli_formats",
    "test_split.py::test_official_pools_equal_the_flag_rules",
    "test_split.py::test_cli_split_refuses_a_non_empty_folder_unless_overwrite",
    "test_synth.py::test_different_seed_gives_different_data",
    "test_synth.py::test_default_size_has_many_identities_with_few_images_each",
    "test_baseline_blocks.py::test_resnet_loader_reads_torchvision_and_timm_files[torchvision]",
    "test_baseline_blocks.py::test_backbones_last_stride_and_two_streams",
    "test_protocol.py::test_random_rule_and_scope_combinations_match_reference[auto-",
    "test_protocol.py::test_sampling_trials_and_both_directions_average_the_runs",
    "test_protocol.py::test_mixed_protocol_matches_its_rules_and_weights",
    "test_ranking.py::test_chunked_features_equal_full_matrix[auto-",
    "test_per_query.py::test_eval_run_keeps_per_query_results_and_rerank_never_replaces_the_plain_score",
    "test_lite0.py::test_imagenet_weights_give_sensible_predictions",
    "test_cnn_baselines.py::test_cal_switch_and_gradient_isolation",
    "test_cnn_baselines.py::test_pcb_h_feature_and_rpp_switch",
    "test_cnn_baselines.py::test_paper_architectures_match_the_published_sizes[bot]",
    "test_compare.py::test_compare_errors[good-",
    "test_vit.py::test_lite0_stem_imagenet_or_random_init",
    "test_reid_datasets.py::test_miniatures_are_deterministic_per_seed",
    "test_datasets.py::test_made_up_dataset_index_split_eval_end_to_end",
    "test_uniat.py::test_build_with_pretrained_checkpoint",
    # The second round (measured under load with per-test process CPU time, 0.2 s or more of
    # their own, fixture set-up aside): one case of each family stays in the fast lane.
    "test_describe.py::test_vit_methods_at_paper",
    "test_describe.py::test_bot_and_pcb_listing_cells",
    "test_describe.py::test_aim_tiny_size_is_the_paper_architecture_on_lite0",
    "test_describe.py::test_meta_count_equals_a_real_build[transreid]",
    "test_describe.py::test_meta_count_equals_a_real_build[uniat-baseline]",
    "test_describe.py::test_paper_cnn_sizes_match_hand_counts[a",
    "test_describe.py::test_paper_cnn_sizes_match_hand_counts[cal]",
    "test_describe.py::test_paper_cnn_sizes_match_hand_counts[pcb]",
    "test_eval_golden.py::test_eval_json_equals_the_recorded_one[small-blocks-atustc-mixed]",
    "test_vi_protocols.py::test_engine_matches_the_agw_style_loop_on_the_recorded_galleries[1-sysu-mm01]",
    "test_vi_protocols.py::test_engine_matches_the_agw_style_loop_on_the_recorded_galleries[0-sysu-mm01:",
    "test_vi_protocols.py::test_engine_matches_the_agw_style_loop_on_the_recorded_galleries[1-sysu-mm01:",
    "test_vi_protocols.py::test_engine_matches_the_agw_style_loop_on_the_recorded_galleries[1-llcm]",
    "test_vi_protocols.py::test_engine_matches_the_agw_style_loop_on_the_recorded_galleries[0-llcm:",
    "test_vi_protocols.py::test_engine_matches_the_agw_style_loop_on_the_recorded_galleries[1-llcm:",
    "test_protocol.py::test_atustc_protocol_matches_official_rules[sparse-0]",
    *(
        f"test_protocol.py::test_random_rule_and_scope_combinations_match_reference[{p}-{s}]"
        for p in ("dense", "sparse")
        for s in range(6, 20)
    ),
    *(
        f"test_ranking.py::test_chunked_features_equal_full_matrix[{p}-1-{k}]"
        for p in ("dense", "sparse")
        for k in range(2, 8)
    ),
    "test_reid_protocols.py::test_engine_matches_the_plain_rule_on_the_miniature[1-",
    "test_vi_baselines.py::test_tiny_embedding_sizes_and_registration[cift-h2ft-",
    "test_vi_baselines.py::test_tiny_embedding_sizes_and_registration[saai-ai-",
    "test_vi_baselines.py::test_paper_architectures_match_hand_counted_sizes[cift",
    "test_vi_datasets.py::test_synth_index_split_eval_from_the_cli[sysu-mm01-",
    "test_vi_datasets.py::test_synth_index_split_eval_from_the_cli[llcm-",
    "test_synth.py::test_unknown_size_and_non_empty_output",
    "test_cnn_baselines.py::test_tiny_embedding_sizes[pcb",
    "test_cnn_baselines.py::test_tiny_embedding_sizes[agw",
    "test_cnn_baselines.py::test_tiny_embedding_sizes[cal",
    "test_per_query.py::test_per_query_frame_reproduces_the_metrics[atustc-mixed]",
    "test_rerank.py::test_equals_dense_reference[3-",
    "test_rerank.py::test_equals_dense_reference[1-",
    "test_reid_datasets.py::test_synth_cli_prints_the_next_command",
    "test_vit.py::test_lite0_stem_frozen_parts_keep_weights_and_batchnorm_statistics[4-2]",
    "test_vit.py::test_lite0_stem_frozen_parts_keep_weights_and_batchnorm_statistics[6-0]",
    "test_eval_golden.py::test_eval_json_equals_the_recorded_one[small-blocks-atustc]",
    "test_vi_protocols.py::test_engine_matches_the_agw_style_loop_on_the_recorded_galleries[0-llcm]",
    "test_vi_baselines.py::test_tiny_embedding_sizes_and_registration[cift-base-",
    "test_uniat.py::test_paper_build_without_pretrained_warns",
    "test_rerank.py::test_equals_dense_reference[4-",
    "test_vi_datasets.py::test_regdb_trials_averaged_from_the_cli",
    "test_vi_protocols.py::test_atustc_eval_json_is_byte_identical_without_sampling",
    "test_lite0.py::test_wrong_shape_is_named",
    *(
        f"test_ranking.py::test_matches_per_query_reference[{p}-{s}]"
        for p in ("auto", "dense", "sparse")
        for s in range(20, 60)
    ),
)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()
    gc.enable()


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
