"""Turning names that came from the server into local paths.

A name stored in a table (a dataset's ``file_name``, an artifact's file list) was written by a user or a pod,
so it is untrusted: ``../x``, ``/etc/x``, ``C:\\x`` or a name with NUL must never decide where bytes land. Every
place that builds a local path from a remote name goes through :func:`contained_path`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from ._exceptions import ConfigError


def contained_path(folder: Path, name: str, *, what: str) -> Path:
    """``folder / name`` resolved, refusing any ``name`` that would land outside ``folder``.

    ``name`` may hold sub-folders (``adapter/config.json``) but no absolute part, drive, ``..`` or NUL.

    Raises:
        ConfigError: the name escapes the folder; says which name and what it belongs to.
    """
    bad = (
        not name
        or "\x00" in name
        or PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
        or PureWindowsPath(name).drive
        or any(part in ("..", "") for part in name.replace("\\", "/").split("/"))
    )
    root = folder.resolve()
    destination = (root / name).resolve() if not bad else root
    if bad or root not in destination.parents:
        raise ConfigError(
            f"{what} has the file name {name!r}, which would be written outside {folder}; refusing to download it",
            argument="dest",
        )
    return destination


def download_target(dest: str | Path, remote_name: str | None, fallback: str, *, what: str) -> Path:
    """Where a download goes: ``dest`` itself when it is not a folder, else the remote name inside it.

    A remote name that escapes the folder raises; a missing one uses ``fallback`` (chosen by us).
    """
    target = Path(dest)
    if not target.is_dir():
        return target
    return contained_path(target, remote_name or fallback, what=what)


__all__ = ["contained_path", "download_target"]
