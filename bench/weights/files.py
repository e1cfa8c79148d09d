"""One registry of model weights: where each comes from, where it lives locally, its licence.

Resolution order for a spec named NAME (first hit wins):
  1. `$VIDEDITBENCH_WEIGHT_<NAME>` (NAME upper-cased, non-alphanumerics as `_`): a local file or folder;
  2. the project cache `$VIDEDITBENCH_CACHE/weights/<NAME>/` (default `~/.cache/videditbench`);
  3. for Hugging Face repos, the standard HF cache (`HF_HOME` / `HF_HUB_CACHE`), read with
     `local_files_only=True`.
Nothing is downloaded at import or during a run: `videditbench weights download NAME` does that,
and it refuses at once when offline (`HF_HUB_OFFLINE=1` or `--offline`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.request
from pathlib import Path

from bench.api.errors import VidEditBenchError, WeightsMissing
from bench.weights.spec import _SPECS, WeightSpec, register_weight  # noqa: F401


def get_spec(name: str) -> WeightSpec:
    _ensure_catalog()
    if name not in _SPECS:
        from bench.api.errors import UnknownNameError

        raise UnknownNameError("weights", name, list(_SPECS))
    return _SPECS[name]


def all_specs() -> list[WeightSpec]:
    _ensure_catalog()
    return [_SPECS[n] for n in sorted(_SPECS)]


def _ensure_catalog() -> None:
    import bench.weights.catalog  # noqa: F401  (registers the built-in specs)


def cache_dir() -> Path:
    return Path(os.environ.get("VIDEDITBENCH_CACHE", Path.home() / ".cache" / "videditbench")).expanduser()


def project_cache_path(spec: WeightSpec) -> Path:
    return cache_dir() / "weights" / spec.name


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on") or os.environ.get(
        "VIDEDITBENCH_OFFLINE", "0"
    ).lower() in ("1", "true", "yes", "on")


def _local_in_project_cache(spec: WeightSpec) -> Path | None:
    root = project_cache_path(spec)
    if spec.kind in ("url", "hf-file") and spec.filename:
        p = root / Path(spec.filename).name
        return p if p.is_file() else None
    if root.is_dir() and any(root.iterdir()):
        return root
    return None


def _local_in_hf_cache(spec: WeightSpec) -> Path | None:
    if spec.kind not in ("hf", "hf-file"):
        return None
    try:
        if spec.kind == "hf-file":
            from huggingface_hub import try_to_load_from_cache

            got = try_to_load_from_cache(spec.source, spec.filename, revision=spec.revision)
            return Path(got) if isinstance(got, str) and Path(got).is_file() else None
        from huggingface_hub import snapshot_download

        path = snapshot_download(
            spec.source,
            revision=spec.revision,
            local_files_only=True,
            allow_patterns=list(spec.allow_patterns) or None,
        )
        return Path(path)
    except Exception:  # not cached (LocalEntryNotFoundError and friends)
        return None


def locate(name: str) -> Path | None:
    """The local path of weights NAME, or None when they are not present. Never downloads."""
    spec = get_spec(name)
    override = os.environ.get(spec.env_var)
    if override:
        p = Path(override).expanduser()
        return p if p.exists() else None
    return _local_in_project_cache(spec) or _local_in_hf_cache(spec)


def resolve(name: str) -> Path:
    """Like `locate`, but raise WeightsMissing with the exact command that fixes it."""
    spec = get_spec(name)
    override = os.environ.get(spec.env_var)
    if override and not Path(override).expanduser().exists():
        raise WeightsMissing(name, f"fix or unset ${spec.env_var}", f"${spec.env_var}={override} does not exist")
    path = locate(name)
    if path is None:
        raise WeightsMissing(name, spec.fix_command, f"source {spec.source}")
    return path


def is_available(name: str) -> bool:
    return locate(name) is not None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def download(name: str, offline: bool | None = None) -> Path:
    """Fetch weights NAME into the standard cache (HF cache for hub repos, project cache for URLs)."""
    spec = get_spec(name)
    if offline or (offline is None and is_offline()):
        raise VidEditBenchError(
            f"cannot download '{name}' while offline (HF_HUB_OFFLINE/--offline); "
            f"copy it from a machine with internet into {project_cache_path(spec)} or set ${spec.env_var}"
        )
    if spec.kind == "hf":
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(spec.source, revision=spec.revision, allow_patterns=list(spec.allow_patterns) or None)
        )
    if spec.kind == "hf-file":
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(spec.source, spec.filename, revision=spec.revision))
    if spec.kind == "url":
        dest_dir = project_cache_path(spec)
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / (spec.filename or Path(spec.source).name)
        tmp = tempfile.NamedTemporaryFile(dir=dest_dir, prefix=f".{dest.name}.", suffix=".part", delete=False)
        member_tmp = Path(tmp.name + ".member")
        try:  # a failed or interrupted download leaves no (0-byte or partial) file behind
            with tmp:
                with urllib.request.urlopen(spec.source, timeout=60) as resp:  # noqa: S310 (explicit user command)
                    shutil.copyfileobj(resp, tmp)
            member = spec.extra.get("zip_member")
            if member:  # the file is one member of a release archive
                import zipfile

                with zipfile.ZipFile(tmp.name) as z, z.open(member) as src, open(member_tmp, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.replace(member_tmp, tmp.name)
            if spec.sha256 and sha256_of(Path(tmp.name)) != spec.sha256:
                raise VidEditBenchError(f"download of '{name}' from {spec.source} failed its sha256 check")
            os.replace(tmp.name, dest)
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            member_tmp.unlink(missing_ok=True)
            raise
        return dest
    raise VidEditBenchError(f"weights '{name}' are managed by a package ({spec.source}); install it and see its docs")


def verify(name: str) -> tuple[bool, str]:
    """(ok, message): present, and matching its sha256 where one is known."""
    spec = get_spec(name)
    path = locate(name)
    if path is None:
        return False, f"missing; run: {spec.fix_command}"
    if spec.sha256 and path.is_file():
        digest = sha256_of(path)
        if digest != spec.sha256:
            return False, f"sha256 mismatch at {path}: {digest[:12]}… != {spec.sha256[:12]}…"
        return True, f"ok (sha256 verified) {path}"
    return True, f"present at {path} (no sha256 known)"
