"""The exact lora-pipeline a pod installs: a wheel of the running package, or a prebuilt one, checked.

A pod must never resolve ``lora-pipeline`` by name from an index: the name may be unpublished, or published by
someone else, and whoever controls it runs code in every pod holding a job token. So the launcher ships the
package it runs itself. :func:`running_wheel` zips the imported ``lora_pipeline`` package (what this process
really executes, uncommitted edits included) with the installed distribution's metadata, so it works for a
regular and for an editable install and needs no build backend. The zip is deterministic: the same files give
the same bytes and the same SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .._exceptions import ConfigError
from .._version import __version__

DISTRIBUTION = "lora-pipeline"
_WHEEL_NAME = re.compile(r"lora_pipeline-(?P<version>[0-9][A-Za-z0-9.+!_]*)-[^-]+-[^-]+-[^-]+\.whl\Z")
_SKIP_PARTS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_WHEEL_FILE = "Wheel-Version: 1.0\nGenerator: lora-pipeline\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


@dataclass(frozen=True)
class PodWheel:
    """A wheel ready to upload beside a job."""

    file_name: str
    content: bytes
    sha256: str

    @property
    def version(self) -> str:
        match = _WHEEL_NAME.match(self.file_name)
        return match.group("version") if match else ""


def running_wheel() -> PodWheel:
    """A wheel of the lora-pipeline this process imports, with its declared dependencies and extras."""
    import lora_pipeline

    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as error:
        raise ConfigError(
            "lora-pipeline is imported but not installed as a distribution, so no wheel can be built for the pod: "
            "install it (pip install -e . or a wheel), or pass wheel=<path to a lora_pipeline-*.whl>",
            argument="wheel",
        ) from error
    files = dict(_package_files(Path(lora_pipeline.__file__).parent))
    files.update(_sql_files())  # what the build's force-include puts at lora_pipeline/_sql
    dist_info = f"lora_pipeline-{__version__}.dist-info"
    files[f"{dist_info}/METADATA"] = (dist.read_text("METADATA") or "").encode("utf-8")
    files[f"{dist_info}/WHEEL"] = _WHEEL_FILE.encode()
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{dist_info}/entry_points.txt"] = entry_points.encode("utf-8")
    content = _zip(files, f"{dist_info}/RECORD")
    return PodWheel(f"lora_pipeline-{__version__}-py3-none-any.whl", content, hashlib.sha256(content).hexdigest())


def prebuilt_wheel(path: str | Path) -> PodWheel:
    """A lora-pipeline wheel from disk (``pip download``, a release, ``python -m build``), checked.

    Raises:
        ConfigError: the file is missing, is not named like a lora-pipeline wheel, is not a readable wheel,
            or its metadata names another distribution.
    """
    wheel = Path(path).expanduser()
    if not wheel.is_file():
        raise ConfigError(f"wheel {wheel} does not exist; build one with `python -m build --wheel`", argument="wheel")
    if not _WHEEL_NAME.match(wheel.name):
        raise ConfigError(
            f"wheel file name {wheel.name!r} is not a lora-pipeline wheel (lora_pipeline-<version>-...-any.whl)",
            argument="wheel",
        )
    content = wheel.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = archive.namelist()
            meta = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
            text = archive.read(meta).decode("utf-8", "replace") if meta else ""
    except zipfile.BadZipFile as error:
        raise ConfigError(f"{wheel.name} is not a valid wheel (not a zip archive)", argument="wheel") from error
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Name:")), "")
    if re.sub(r"[-_.]+", "-", name).lower() != DISTRIBUTION or "lora_pipeline/pod/runtime.py" not in names:
        raise ConfigError(f"{wheel.name} does not contain the lora-pipeline package (Name: {name!r})", argument="wheel")
    return PodWheel(wheel.name, content, hashlib.sha256(content).hexdigest())


def _package_files(package_dir: Path) -> list[tuple[str, bytes]]:
    root = package_dir.parent
    return [
        (path.relative_to(root).as_posix(), path.read_bytes())
        for path in sorted(package_dir.rglob("*"))
        if path.is_file() and not _SKIP_PARTS.intersection(path.parts) and path.suffix not in _SKIP_SUFFIXES
    ]


def _sql_files() -> dict[str, bytes]:
    from ..db.paths import sql_root

    try:
        root = sql_root()
    except FileNotFoundError:
        return {}
    return {
        "lora_pipeline/_sql/" + path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not _SKIP_PARTS.intersection(path.parts)
    }


def _zip(files: dict[str, bytes], record_name: str) -> bytes:
    """A deterministic wheel archive of ``files`` plus its RECORD (urlsafe base64 SHA-256 without padding)."""
    record = []
    for name, data in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{record_name},,")
    files = {**files, record_name: ("\n".join(record) + "\n").encode()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


__all__ = ["DISTRIBUTION", "PodWheel", "prebuilt_wheel", "running_wheel"]
