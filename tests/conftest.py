"""Test environment: never touch the network, keep caches in temp dirs, keep CPU threads modest."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Must be set before huggingface_hub / transformers / diffusers are imported anywhere.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def goldens_path() -> Path:
    return Path(os.environ.get("VIDEDITBENCH_GOLDENS", REPO_ROOT.parent / "shared" / "goldens"))


def in_ci() -> bool:
    """`.ci/run` exports CI=true: there a missing fixture or system tool is a broken setup, not a skip."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_requirement(msg: str) -> None:
    """Skip locally, fail under CI: a test whose requirement CI provides must never pass by skipping there."""
    if in_ci():
        pytest.fail(msg + " (CI=true: CI must provide it)", pytrace=False)
    pytest.skip(msg, allow_module_level=True)


def import_or_skip(module: str, install: str = "pip install -e '.[test]'"):
    """`pytest.importorskip` for what CI's `.[test]` installs: skips locally, fails under CI=true."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        missing_requirement(f"{module} is not installed ({install})")


def require_goldens(subdir: str = "") -> Path:
    """The shared goldens folder (or one of its sub-folders); skips locally, fails in CI when absent."""
    path = goldens_path() / subdir if subdir else goldens_path()
    if not (path / "expected.json").is_file():
        where = "../shared/goldens" + (f"/{subdir}" if subdir else "")
        missing_requirement(f"golden fixtures not found at {path} (expected {where} beside the repo, "
                            "or VIDEDITBENCH_GOLDENS)")
    return path


def require_chromium() -> str:
    """Path of Debian's Chromium; skips locally, fails in CI (.ci/run installs it) when absent."""
    import shutil

    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    if browser is None and Path("/usr/bin/chromium").is_file():
        browser = "/usr/bin/chromium"
    if browser is None:
        missing_requirement("chromium not installed (apt-get install -y chromium)")
    return str(browser)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Every test gets an empty project cache and HF cache, so nothing real is ever found or fetched."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("VIDEDITBENCH_CACHE", str(root / "videditbench"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    for key in list(os.environ):
        if key.startswith("VIDEDITBENCH_WEIGHT_"):
            monkeypatch.delenv(key)
    yield


@pytest.fixture(scope="session")
def goldens_dir() -> Path:
    return require_goldens()


@pytest.fixture(scope="session")
def golden_expected(goldens_dir) -> dict:
    import json

    return json.loads((goldens_dir / "expected.json").read_text())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def small_video(rng):
    """A 6-frame 64x64 clip: a textured background translating by 2 px/frame plus a moving square."""
    from bench.api.types import Video

    h = w = 64
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for t in range(6):
        bg = 128 + 60 * np.sin(2 * np.pi * (x - 2 * t) / 23.0)[..., None] * np.array([1.0, 0.6, -0.4])
        f = bg.copy()
        f[20 + t : 36 + t, 10 + 3 * t : 26 + 3 * t] = (220, 40, 40)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return Video(np.stack(frames), fps=8.0)


#: tests measured at 20 s or more on the 2-core CI VM (`pytest --durations=60`, 2026-12-08) that carry no
#: @pytest.mark.slow of their own: marked slow here, so `-m "not slow"` is a fast subset of minutes.
#: Re-measure and update this list when it drifts.
MEASURED_SLOW = frozenset({
    'tests/test_config_method_presets.py::test_run_with_config_v2vbench_applies_each_methods_v2vbench_preset',
    'tests/test_decode_once.py::test_a_budget_smaller_than_the_run_still_saves_decodes_and_keeps_the_numbers',
    'tests/test_decode_once.py::test_a_fresh_run_scores_the_frames_it_just_wrote_without_decoding_them',
    'tests/test_decode_once.py::test_each_edit_is_decoded_once_and_the_numbers_are_unchanged',
    'tests/test_determinism.py::test_identical_and_resumed_runs_write_identical_quality_tables',
    'tests/test_efficiency_memory.py::test_set_level_values_are_kept_per_sample_set',
    'tests/test_gmflow_native.py::test_golden_first_pair_matches_v2vbench',
    'tests/test_goldens_dover.py::test_golden_scores[edit_a|seed0]',
    'tests/test_goldens_vbench.py::test_background_consistency_golden[two]',
    'tests/test_goldens_vbench.py::test_dynamic_degree_golden[edit_a]',
    'tests/test_goldens_vbench.py::test_dynamic_degree_golden[edit_b]',
    'tests/test_goldens_vbench.py::test_dynamic_degree_golden[src_a]',
    'tests/test_goldens_vbench.py::test_dynamic_degree_golden[src_b]',
    'tests/test_goldens_vbench.py::test_dynamic_degree_golden_first_pairs',
    'tests/test_goldens_vbench.py::test_motion_smoothness_golden',
    'tests/test_goldens_vbench.py::test_subject_consistency_golden[all]',
    'tests/test_goldens_vbench.py::test_subject_consistency_golden[two]',
    'tests/test_hardening_runner.py::test_a_method_writing_into_its_input_is_an_error_row_and_the_cache_stays_intact',
    'tests/test_hardening_runner.py::test_sys_exit_inside_an_adapter_is_an_error_row_not_the_end_of_the_run',
    'tests/test_incremental_export.py::test_previews_of_an_older_encoding_are_reencoded_once_then_left_alone',
    'tests/test_incremental_export.py::test_rerun_and_reexport_of_a_finished_run_touch_no_file',
    'tests/test_leaderboard_filters.py::test_a_config_run_exports_the_configs_columns_in_its_order',
    'tests/test_leaderboard_filters.py::test_a_method_that_shrinks_the_paired_set_is_named_and_can_be_left_out',
    'tests/test_method_goldens_anyv2v.py::test_official_mode_takes_the_golden_clip_as_one_window',
    'tests/test_method_goldens_anyv2v.py::test_step_and_final_latents_match_the_official_code[main]',
    'tests/test_method_goldens_tokenflow.py::test_loose_end_to_end',
    'tests/test_method_goldens_tokenflow.py::test_tight_start_latent_and_keyframes',
    'tests/test_method_goldens_vidtome.py::test_end_to_end_edit_is_close_to_the_official_output',
    'tests/test_method_goldens_vidtome.py::test_merge_draws_and_counts_equal_the_golden_at_every_call',
    'tests/test_methods_diffusers_a.py::test_runner_edits_with_tiny_pipelines_and_skips_missing_weights',
    'tests/test_methods_diffusers_b.py::test_depth_methods_run_through_the_harness',
    'tests/test_methods_tokenflow_vidtome.py::test_tokenflow_and_vidtome_through_the_runner',
    'tests/test_methods_video_models.py::test_video_models_run_through_the_harness',
    'tests/test_metric_batching.py::test_failing_prefetch_falls_back_per_item_and_loses_no_rows',
    'tests/test_metric_batching.py::test_runner_batches_clip_frames_across_samples_with_the_same_numbers',
    'tests/test_packaging.py::test_a_wheel_install_runs_the_main_job_on_the_embedded_suite',
    'tests/test_raft_own.py::test_backend_gives_the_ptlflow_backend_flows_and_keeps_the_raft_variant',
    'tests/test_ray_executor.py::test_ctrl_c_stops_a_ray_run_cleanly_and_the_same_command_resumes',
    'tests/test_ray_executor.py::test_ray_executor_gives_the_local_quality_table',
    'tests/test_ray_executor.py::test_ray_metric_actors_batch_frames_across_the_edits_of_a_group',
    'tests/test_report_fair.py::test_report_fits_1400px_in_headless_chromium',
    'tests/test_report_fair.py::test_report_per_task_sections_reference_rows_and_image_guidance',
    'tests/test_runner.py::test_export_writes_overall_and_per_task_leaderboards_and_report',
    'tests/test_runner.py::test_image_guided_methods_only_get_image_samples',
    'tests/test_runner.py::test_kill_9_then_resume_matches_an_uninterrupted_run',
    'tests/test_runner.py::test_run_writes_edits_scores_and_skips_done_work',
    'tests/test_runner.py::test_shards_merge_into_the_same_results_as_one_run',
    'tests/test_scaffold.py::test_generated_test_passes_and_can_fail',
    'tests/test_shard_merge.py::test_merge_refuses_a_different_seed_into_an_existing_run',
    'tests/test_shard_merge.py::test_merge_refuses_runs_that_differ_in_frame_count_and_creates_nothing',
    'tests/test_shard_merge.py::test_merge_refuses_two_different_suites_with_the_same_name_and_ids',
    'tests/test_shard_merge.py::test_merged_shards_equal_a_single_run_are_self_contained_and_recompute_set_metrics',
    'tests/test_shard_merge.py::test_shards_run_into_one_store_give_the_full_set_value_and_the_single_run_table',
    'tests/test_speed_imports_precision.py::test_clip_and_dino_scores_do_not_import_lightning_or_ptlflow',
    'tests/test_speed_imports_precision.py::test_gmflow_loads_without_ptlflow_package_and_matches_get_model',
    'tests/test_stale_rows.py::test_a_method_failing_after_a_frame_count_change_shows_no_old_mean',
    'tests/test_stale_rows.py::test_a_method_failing_on_a_replaced_source_video_shows_no_old_mean',
    'tests/test_study_analysis.py::test_bootstrap_intervals_cover_the_truth_at_about_the_stated_rate',
    'tests/test_study_server.py::test_cli_create_results_export_and_report',
})


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.nodeid in MEASURED_SLOW:
            item.add_marker(pytest.mark.slow)
