"""Moving bytes to and from Storage as plans: standard and resumable (TUS) uploads, verified downloads.

Supabase Storage takes files up to 6 MB in one request and larger ones through its TUS endpoint
(``/storage/v1/upload/resumable``) in 6 MiB chunks. A TUS upload survives interruptions: the server keeps
what it received, ``HEAD`` tells the offset, and the next ``PATCH`` continues from there. The TUS protocol is
small, so it is implemented here over the same executor rather than with a client library (tuspy brings
requests/aiohttp and no httpx support).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

from ._exceptions import APIConnectionError, LoraPipelineError, NotFound, ServiceUnavailable, Timeout
from ._ops import Http, HttpResult, Offload, Op, Sleep
from ._progress import Progress, ProgressArg

STANDARD_UPLOAD_LIMIT = 6 * 1024 * 1024
TUS_CHUNK = 6 * 1024 * 1024
TUS_VERSION = "1.0.0"
_TRANSIENT = (APIConnectionError, Timeout, ServiceUnavailable)


class UploadInterrupted(LoraPipelineError):
    """A resumable upload stopped part-way; running the same upload again resumes from ``offset``."""

    def __init__(self, message: str, *, upload_url: str, offset: int, total: int) -> None:
        super().__init__(message)
        self.upload_url = upload_url
        self.offset = offset
        self.total = total


def encode_path(object_name: str) -> str:
    """Percent-encode each segment of an object name, as storage3 does."""
    from urllib.parse import quote

    return "/".join(quote(part, safe="") for part in object_name.split("/"))


def sha256_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_chunk(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def _metadata(pairs: Mapping[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def upload_file(
    path: Path,
    *,
    bucket: str,
    object_name: str,
    content_type: str,
    headers: Mapping[str, str] | None = None,
    upsert: bool = True,
    resume_url: str | None = None,
    on_upload_url: Callable[[str], Generator[Op, Any, Any]] | None = None,
    progress: ProgressArg = None,
    max_resyncs: int = 5,
) -> Generator[Op, Any, int]:
    """Upload ``path`` (standard up to 6 MB, TUS above); returns the bytes sent.

    ``on_upload_url`` is a plan run once a resumable upload exists (e.g. to record its URL for a later resume).

    Raises:
        UploadInterrupted: the connection kept failing; the same call with ``resume_url`` continues.
    """
    size = path.stat().st_size
    if size <= STANDARD_UPLOAD_LIMIT and resume_url is None:
        data = yield Offload(path.read_bytes)
        upload_headers = {
            "Content-Type": content_type,
            "x-upsert": "true" if upsert else "false",
            "Cache-Control": "max-age=3600",
            **(headers or {}),
        }
        yield Http(
            "POST",
            f"/storage/v1/object/{bucket}/{encode_path(object_name)}",
            what=f"{bucket}/{object_name}",
            headers=upload_headers,
            content=data,
            service="storage",
            idempotent=upsert,
        )
        return size
    bar = Progress(f"uploading {path.name}", size, progress)
    try:
        return (
            yield from _tus_upload(
                path,
                size,
                bucket,
                object_name,
                content_type,
                dict(headers or {}),
                upsert,
                resume_url,
                on_upload_url,
                bar,
                max_resyncs,
            )
        )
    finally:
        bar.close()


def _tus_upload(
    path: Path,
    size: int,
    bucket: str,
    object_name: str,
    content_type: str,
    headers: dict[str, str],
    upsert: bool,
    resume_url: str | None,
    on_upload_url: Callable[[str], Generator[Op, Any, Any]] | None,
    bar: Progress,
    max_resyncs: int,
) -> Generator[Op, Any, int]:
    base = {"Tus-Resumable": TUS_VERSION, **headers}
    offset = 0
    if resume_url is not None:
        offset = yield from _server_offset(resume_url, base, bucket, object_name)
    if resume_url is None or offset < 0:
        metadata = _metadata(
            {"bucketName": bucket, "objectName": object_name, "contentType": content_type, "cacheControl": "3600"}
        )
        created: HttpResult = yield Http(
            "POST",
            "/storage/v1/upload/resumable",
            what=f"{bucket}/{object_name}",
            service="storage",
            headers={
                **base,
                "Upload-Length": str(size),
                "Upload-Metadata": metadata,
                "x-upsert": "true" if upsert else "false",
            },
            idempotent=False,
        )
        resume_url, offset = created.headers["location"], 0
        if on_upload_url is not None:
            yield from on_upload_url(resume_url)
    resyncs = 0
    while offset < size:
        bar.update(offset)
        chunk = yield Offload(read_chunk, (path, offset, TUS_CHUNK))
        try:
            sent: HttpResult = yield Http(
                "PATCH",
                resume_url,
                what=f"{bucket}/{object_name}",
                service="storage",
                idempotent=False,
                headers={**base, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
                content=chunk,
            )
            offset = int(sent.headers["upload-offset"])
        except _TRANSIENT as error:
            resyncs += 1
            if resyncs > max_resyncs:
                raise UploadInterrupted(
                    f"upload of {path.name} stopped at {offset}/{size} bytes ({type(error).__name__}); run the same "
                    "upload again to resume from there",
                    upload_url=resume_url,
                    offset=offset,
                    total=size,
                ) from error
            yield Sleep(min(2.0**resyncs, 30.0))
            offset = max(0, (yield from _server_offset(resume_url, base, bucket, object_name)))
    bar.update(size)
    return size


def _server_offset(url: str, headers: Mapping[str, str], bucket: str, object_name: str) -> Generator[Op, Any, int]:
    """The offset the server holds for an upload, or -1 when it does not know the upload any more."""
    try:
        head: HttpResult = yield Http(
            "HEAD", url, what=f"{bucket}/{object_name}", service="storage", headers=dict(headers)
        )
    except NotFound:
        return -1
    return int(head.headers.get("upload-offset", "0"))


def download_file(
    bucket: str,
    object_name: str,
    dest: Path,
    *,
    expected_sha256: str | None = None,
    headers: Mapping[str, str] | None = None,
    progress: ProgressArg = None,
    total: int | None = None,
    resume: bool = True,
) -> Generator[Op, Any, Path]:
    """Stream an object to ``dest`` (resuming a partial file with a Range request) and check its SHA-256."""
    from ._exceptions import ArtifactIntegrityError

    partial = dest.with_name(dest.name + ".part")
    offset = partial.stat().st_size if resume and partial.exists() else 0
    bar = Progress(f"downloading {dest.name}", total or 0, progress if total else None)
    extra = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        yield Http(
            "GET",
            f"/storage/v1/object/{bucket}/{encode_path(object_name)}",
            what=f"{bucket}/{object_name}",
            service="storage",
            headers={**(headers or {}), **extra},
            dest=partial,
            dest_offset=offset,
            on_chunk=(lambda n: bar.update(min(total or 0, partial.stat().st_size))) if total else None,
        )
    finally:
        bar.close()
    if expected_sha256:
        actual = yield Offload(sha256_file, (partial,))
        if actual != expected_sha256:
            partial.unlink(missing_ok=True)
            raise ArtifactIntegrityError(
                f"{object_name}: SHA-256 {actual[:12]}... does not match the recorded "
                f"{expected_sha256[:12]}...; the file was removed, download again"
            )
    partial.replace(dest)
    return dest


__all__ = [
    "STANDARD_UPLOAD_LIMIT",
    "TUS_CHUNK",
    "UploadInterrupted",
    "download_file",
    "encode_path",
    "read_chunk",
    "sha256_file",
    "upload_file",
]
