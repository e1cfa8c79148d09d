"""Issue 7 (input validation) and issue 14's CLI contract: option merge, option targets, exit codes,
--no-resume/--force, one-line errors (never a traceback), rich markup printed as text."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import bench.cli as cli
import bench.cli.run as cli_run
from bench.api.catalog import METHODS
from bench.api.method import Method

TINY = ["--num-frames", "4", "--size", "32", "--device", "cpu", "--no-export"]


class _Raises(Method):
    name = "hard-cli-raises"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        raise RuntimeError("[/x] broken [red]adapter[/red] [bold")


METHODS.register(_Raises.name, _Raises)


def _invoke(args, **kw):
    return CliRunner().invoke(cli.app, args, catch_exceptions=True, **kw)


def _one_line_error(res, code: int, *needles: str) -> None:
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    text = res.output.strip()
    assert "Traceback" not in text
    err = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(err) == 1, text
    for n in needles:
        assert n in err[0], (n, err[0])


@pytest.fixture
def captured():
    """Validation only: `_run` is replaced, so an accepted command line runs nothing."""
    seen = []
    with mock.patch.object(cli_run, "_run", lambda cfg, **kw: seen.append(cfg)):
        yield seen


# --- --config ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, needles", [
    ("methods: [source\nmetrics: x", ("invalid YAML", "line")),
    ("methods: !!python/object/apply:os.system ['touch /tmp/pwned-videditbench']", ("invalid YAML", "!!python")),
    ("methods: 3", ("field 'methods'", "list of names")),
    ("methods: [source, 4]", ("field 'methods'",)),
    ("method_options: [a, b]", ("field 'method_options'",)),
    ("method_options: {flow-propagate: 3}", ("field 'method_options'",)),
    ("mehtods: [source]", ("unknown key 'mehtods'",)),
    ("- just\n- a list", ("expected a mapping",)),
    ("method_options: {rave: {shuffle: false}}", ("'rave'", "not in this run")),
])
def test_bad_config_files_are_one_line(tmp_path, captured, text, needles):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    _one_line_error(_invoke(["run", "--config", str(f), *TINY]), 2, *needles)
    assert not Path("/tmp/pwned-videditbench").exists() and not captured


def test_methods_as_a_string_is_a_list_of_names_not_letters(tmp_path, captured):
    f = tmp_path / "c.yaml"
    f.write_text("methods: source\nmetrics: temporal_flickering, bg_psnr\n")
    res = _invoke(["run", "--config", str(f), *TINY])
    assert res.exit_code == 0, res.output
    assert captured[0].methods == ["source"] and captured[0].metrics == ["temporal_flickering", "bg_psnr"]


# --- option merge and targets (issue 14) -------------------------------------------------------------
def test_cli_options_merge_over_the_config_per_key(tmp_path, captured):
    f = tmp_path / "c.yaml"
    f.write_text("methods: [flow-propagate, color-transfer]\n"
                 "method_options: {flow-propagate: {fit: contain, feather: 2.0}, color-transfer: {strength: 0.5}}\n"
                 "metric_options: {warp_error: {flow: dis}}\nmetrics: [warp_error]\n")
    res = _invoke(["run", "--config", str(f), "--method-opt", "flow-propagate.feather=4.0",
                   "--metric-opt", "warp_error.flow=gt", *TINY])
    assert res.exit_code == 0, res.output
    cfg = captured[0]
    assert cfg.method_options == {"flow-propagate": {"fit": "contain", "feather": 4.0}, "color-transfer": {"strength": 0.5}}
    assert cfg.metric_options == {"warp_error": {"flow": "gt"}}


@pytest.mark.parametrize("args, needles", [
    (["--methods", "source", "--method-opt", "rave.shuffle=false"], ("'rave'", "not in this run's methods")),
    (["--metrics", "bg_psnr", "--metric-opt", "clip_consistency.pairing=all"], ("'clip_consistency'", "not in this run")),
    (["--methods", "flow-propagate", "--method-opt", "flow-propagate.nope=1"], ("no option(s) ['nope']",)),
    (["--methods", "color-transfer", "--method-opt", "color-transfer.strength=7"], ("strength",)),
    (["--metrics", "clip_consistency", "--metric-opt", "clip_consistency.pairing=bogus"], ("bad pairing 'bogus'",)),
    (["--methods", "flow-propagate", "--method-opt", "flow-propagate.fit=[unclosed"], ("not valid YAML",)),
    (["--method-opt", "no-dot=1"], ("expected NAME.KEY=VALUE",)),
])
def test_bad_options_exit_non_zero_with_one_line(captured, args, needles):
    _one_line_error(_invoke(["run", *args, *TINY]), 2, *needles)
    assert not captured


# --- numbers, names, suite paths ------------------------------------------------------------------------
@pytest.mark.parametrize("args, needles", [
    (["--batch-size", "0"], ("--batch-size",)), (["--warmup", "-1"], ("--warmup",)),
    (["--seed", str(10**23)], ("--seed",)), (["--seed", "-1"], ("--seed",)), (["--limit", "0"], ("--limit",)),
    (["--timeout", "0"], ("--timeout",)), (["--timeout", "nan"], ("--timeout",)),
    (["--name", "."], ("single folder name",)), (["--name", ".."], ("single folder name",)),
    (["--name", "/tmp/x"], ("single folder name",)), (["--name", "a/../../b"], ("single folder name",)),
    (["--suite", "/missing/suite.yaml"], ("suite file not found", "/missing/suite.yaml")),
    (["--suite", "x\0y"], ("--suite", "NUL")),
])
def test_bad_arguments_are_refused_up_front_naming_the_option(captured, args, needles):
    full = [*TINY, *args] if "--num-frames" not in args else args
    _one_line_error(_invoke(["run", *full]), 2, *needles)
    assert not captured


def test_eval_label_must_be_one_safe_component(tmp_path, captured):
    (tmp_path / "edits").mkdir()
    _one_line_error(_invoke(["eval", str(tmp_path / "edits"), "--label", "../../../x"]), 2, "label", "--label")


# --- --no-resume / --force --------------------------------------------------------------------------------
def test_no_resume_asks_or_needs_force_and_deletes_only_our_runs(tmp_path, captured):
    from bench.store.results import ResultStore

    results = tmp_path / "results"
    ResultStore(results / "r1").close()
    (results / "r1" / "marker").write_text("old run")
    base = ["run", "--results-dir", str(results), *TINY, "--no-resume"]
    _one_line_error(_invoke([*base, "--name", "r1"]), 2, "--force")
    assert (results / "r1" / "marker").exists()
    assert _invoke([*base, "--name", "r1", "--force"]).exit_code == 0
    assert not (results / "r1").exists()  # deleted, the (patched) run would start afresh
    (results / "notarun").mkdir()
    (results / "notarun" / "precious.txt").write_text("x")
    _one_line_error(_invoke([*base, "--name", "notarun", "--force"]), 2, "not a videditbench run")
    assert (results / "notarun" / "precious.txt").exists()
    # a missing run is simply started
    assert _invoke([*base, "--name", "fresh"]).exit_code == 0


# --- exit codes of real runs ----------------------------------------------------------------------------------
def test_a_run_in_which_nothing_succeeded_exits_1_and_markup_is_printed_as_text(tmp_path):
    res = _invoke(["run", "--methods", "hard-cli-raises", "--metrics", "temporal_flickering", "--limit", "1",
                   "--results-dir", str(tmp_path), "--name", "fails", *TINY], env={"COLUMNS": "300"})
    _one_line_error(res, 1, "nothing succeeded")
    assert "[/x] broken [red]adapter[/red] [bold" in res.output  # rich markup shown, not interpreted


def test_eval_in_which_every_edit_failed_exits_1(tmp_path):
    edits = tmp_path / "my-edits"
    _one_edit(edits, frames=1)  # found, but one frame for a 4-frame source: the edit fails
    res = _invoke(["eval", str(edits), "--metrics", "temporal_flickering", "--limit", "2", "--results-dir",
                   str(tmp_path / "results"), "--num-frames", "4", "--size", "32", "--device", "cpu"])
    _one_line_error(res, 1, "nothing succeeded")


def _one_edit(edits, frames: int = 4) -> None:
    """An edit of the mini suite's first sample (eval scores only samples that have one)."""
    import numpy as np

    from bench.media.video_io import write_frames

    write_frames(edits / "bigbuckbunny" / "fg-bear", np.zeros((frames, 32, 32, 3), np.uint8))


def test_a_successful_run_exits_0(tmp_path):
    res = _invoke(["run", "--methods", "source", "--metrics", "temporal_flickering", "--limit", "1",
                   "--results-dir", str(tmp_path), "--name", "ok", *TINY])
    assert res.exit_code == 0, res.output


# --- fuzz: CLI options ----------------------------------------------------------------------------------------
_ints = st.one_of(st.integers(-10**25, 10**25), st.sampled_from(["0", "-1", "1e3", "x", "", "nan", "2**8"]))
_opts = st.sampled_from(["--batch-size", "--warmup", "--seed", "--limit", "--num-frames", "--size", "--timeout",
                         "--shard", "--name", "--method-opt", "--metric-opt", "--suite"])
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opt=_opts, value=st.one_of(_ints.map(str), _text))
def test_fuzz_cli_options_never_traceback(opt, value):
    if opt in ("--method-opt", "--metric-opt"):
        value = ("source." if opt == "--method-opt" else "temporal_flickering.") + value
    seen = []
    with mock.patch.object(cli_run, "_run", lambda cfg, **kw: seen.append(cfg)):
        res = CliRunner().invoke(cli.app, ["run", "--methods", "source", "--metrics", "temporal_flickering",
                                           "--device", "cpu", opt, value], catch_exceptions=True)
    assert res.exception is None or isinstance(res.exception, SystemExit), (opt, value, repr(res.exception))
    assert "Traceback" not in res.output
    if res.exit_code == 0:
        cfg = seen[0]
        assert (cfg.batch_size is None or cfg.batch_size >= 1) and (cfg.warmup is None or cfg.warmup >= 0) \
            and 0 <= cfg.seed < 2**63  # None: per-device default
    else:
        assert res.exit_code == 2, (opt, value, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        flag_named = opt in res.output or opt.lstrip("-").replace("-", " ") in res.output.lower() or "Usage" in res.output
        assert flag_named or len(lines) == 1, (opt, value, res.output)


# --- fuzz: manifests --------------------------------------------------------------------------------------------
_values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    _text, st.just("a\0b"), st.just("x" * 20_000), st.lists(st.integers(-5, 500), max_size=5),
    st.dictionaries(st.sampled_from(["a", "id"]), st.integers(), max_size=2),
)
_fields = st.sampled_from([
    ("video", "id"), ("video", "source"), ("video", "source_prompt"), ("video", "fps"), ("video", "box"),
    ("video", "stride"), ("video", "start"), ("video", "category"), ("video", "edits"), ("edit", "id"),
    ("edit", "edit_type"), ("edit", "target_prompt"), ("edit", "reference"), ("edit", "mask_type"),
    ("top", "name"), ("top", "preprocess"), ("top", "videos"), ("pre", "num_frames"), ("pre", "size"),
])


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from bench.media.video_io import write_frames

    d = tmp_path_factory.mktemp("fuzz")
    write_frames(d / "clip", np.zeros((4, 16, 16, 3), np.uint8))
    return d


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=_fields, value=_values)
def test_fuzz_manifest_fields_one_line_naming_the_field(clip_dir, where, value):
    from bench.api.errors import VidEditBenchError
    from bench.suites import load_suite

    edit = {"id": "e1", "edit_type": "style", "target_prompt": "a red car"}
    video = {"id": "clip", "source": "clip", "source_prompt": "a car", "edits": [edit]}
    doc = {"name": "fuzz", "preprocess": {"num_frames": 4, "size": 16}, "videos": [video]}
    kind, field = where
    {"video": video, "edit": edit, "top": doc, "pre": doc["preprocess"]}[kind][field] = value
    path = clip_dir / "suite.json"
    path.write_text(json.dumps(doc))
    try:
        suite = load_suite(str(path))
        for s in suite.samples:
            suite.load(s)
    except VidEditBenchError as e:
        msg = str(e)
        assert "\n" not in msg, msg
        assert len(msg) < 2000, msg[:200]
        assert field in msg or str(clip_dir) in msg, (field, msg)  # the field, or the file that is wrong


def test_markup_like_text_in_messages_and_paths_is_printed_verbatim(tmp_path):
    (tmp_path / "clip").mkdir()
    m = tmp_path / "s.yaml"
    m.write_text("name: t\nvideos:\n  - {id: v, source: clip, source_prompt: x, box: [1, 2], edits: [{id: e, edit_type: style, target_prompt: y}]}\n")
    res = _invoke(["suite", "validate", str(m)], env={"COLUMNS": "400"})
    _one_line_error(res, 2, "expected [x0, y0, x1, y1] (4 numbers)")
    odd = tmp_path / "[/x]" / "[red]s.yaml"
    res = _invoke(["run", "--suite", str(odd), *TINY], env={"COLUMNS": "400"})
    _one_line_error(res, 2, "suite file not found", "[/x]/[red]s.yaml")


def _manifest(tmp_path, video_extra: str = "", prompt: str = "a red car") -> Path:
    from bench.media.video_io import write_frames

    write_frames(tmp_path / "clip", np.zeros((4, 16, 16, 3), np.uint8))
    m = tmp_path / "s.json"
    video = {"id": "v", "source": "clip", "source_prompt": "a car",
             "edits": [{"id": "e", "edit_type": "style", "target_prompt": prompt}]}
    if video_extra:
        video.update(json.loads(video_extra))
    m.write_text(json.dumps({"name": "t", "preprocess": {"num_frames": 4, "size": 16}, "videos": [video]}))
    return m


@pytest.mark.parametrize("extra, prompt, needles", [
    ('{"fps": NaN}', "a red car", ("field 'fps'", "positive number")),
    ('{"fps": Infinity}', "a red car", ("field 'fps'",)),
    ("", "x" * 200_000, ("field 'target_prompt'", "200000 characters")),
    ("", "a red\u0000car", ("field 'target_prompt'", "NUL")),
])
def test_bad_manifest_values_name_the_field(tmp_path, extra, prompt, needles):
    res = _invoke(["suite", "validate", str(_manifest(tmp_path, extra, prompt))], env={"COLUMNS": "400"})
    _one_line_error(res, 2, *needles)
    assert len(res.output) < 2000


def test_corrupt_store_and_self_merge_through_the_cli_are_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.sqlite").write_bytes(b"garbage" * 500)
    _one_line_error(_invoke(["leaderboard", str(run)]), 2, "not a readable videditbench results store")
    from bench.store.results import ResultStore

    ResultStore(tmp_path / "good").close()
    _one_line_error(_invoke(["merge", str(tmp_path / "good"), str(tmp_path / "good")]), 2, "into itself")


def test_eval_folder_with_yaml_special_characters(tmp_path, captured):
    edits = tmp_path / "my: edits #1"
    _one_edit(edits)
    res = _invoke(["eval", str(edits), "--label", "mine"])
    assert res.exit_code == 0, res.output
    assert captured[0].method_options["precomputed"]["dir"] == str(edits.resolve())


def test_eval_takes_the_metric_batch_size_and_checks_it(tmp_path, captured):
    edits = tmp_path / "my-edits"
    _one_edit(edits)
    res = _invoke(["eval", str(edits), "--batch-size", "8"])
    assert res.exit_code == 0, res.output
    assert captured[0].batch_size == 8
    _one_line_error(_invoke(["eval", str(edits), "--batch-size", "0"]), 2, "--batch-size")


def test_no_resume_force_never_deletes_a_run_in_use(tmp_path, captured):
    from bench.running.locking import RunLock
    from bench.store.results import ResultStore

    results = tmp_path / "results"
    ResultStore(results / "busy").close()
    with RunLock(results / "busy"):
        res = _invoke(["run", "--results-dir", str(results), "--name", "busy", "--no-resume", "--force", *TINY])
        _one_line_error(res, 2, "in use by another videditbench process")
    assert (results / "busy" / "results.sqlite").exists()


def test_eval_no_export_stores_the_scores_and_writes_no_leaderboard(tmp_path):
    from bench.store.results import ResultStore
    from bench.suites import load_suite
    from bench.media.video_io import write_frames

    suite = load_suite("mini", num_frames=4, size=32)
    sample = suite.samples[0]
    edits = tmp_path / "my-edits"
    write_frames(edits / sample.video_id / sample.edit_id, 255 - suite.load(sample).video.frames)
    base = ["eval", str(edits), "--metrics", "temporal_flickering", "--limit", "1", "--results-dir",
            str(tmp_path / "results"), "--num-frames", "4", "--size", "32", "--device", "cpu"]
    res = _invoke([*base, "--name", "quiet", "--no-export"])
    assert res.exit_code == 0, res.output
    run = tmp_path / "results" / "quiet"
    with ResultStore(run) as store:
        rows = [r for r in store.scores_frame().to_dict("records") if r["metric"] == "temporal_flickering"]
    assert [r["status"] for r in rows] == ["ok"] and 0 < rows[0]["value"] <= 1
    assert not (run / "leaderboard").exists()
    res = _invoke([*base, "--name", "loud"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "results" / "loud" / "leaderboard" / "leaderboard.csv").is_file()
