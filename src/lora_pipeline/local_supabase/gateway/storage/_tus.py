"""``/upload/resumable``: TUS 1.0.0 resumable uploads as Supabase Storage serves them (tus-node-server +
supabase/storage ``routes/tus``).

- ``OPTIONS``: capabilities (``Tus-Version``, ``Tus-Extension``, ``Tus-Max-Size``), no auth.
- ``POST``: ``Upload-Length`` + ``Upload-Metadata`` (``bucketName``, ``objectName``, ``contentType``,
  ``cacheControl``, ``metadata``) [+ ``x-upsert: true``] creates the upload after the size limit (413), the
  permission test as the caller and the bucket's MIME rule (415); 201 + ``Location``. A body with
  ``Content-Type: application/offset+octet-stream`` is the first chunk (creation-with-upload).
- ``HEAD``: ``Upload-Offset`` (what the server really has), ``Upload-Length``, ``Upload-Metadata``.
- ``PATCH``: appends at ``Upload-Offset`` (a mismatch is 409); every PATCH runs the permission test again.
  Reaching ``Upload-Length`` finalises the object exactly like a standard upload (limits re-checked).
- ``DELETE``: aborts an unfinished upload.

A missing or bad JWT gets Storage's JSON envelope (its JWT check runs before the tus server); every other
error is the tus server's: the real status and a plain-text message. ``/upload/resumable/sign`` does the
same with an ``x-signature`` upload token instead of a JWT.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate

import psycopg
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ...db import RequestIdentity
from . import _errors as errors
from . import _signed as signed_urls
from . import _sql as sql
from ._context import Caller, StorageContext, authenticate, service_identity, user_identity
from ._disk import StagedBytes, StagingWriter, file_md5
from ._tus_store import ResumableUpload, TusStore, UploadId, parse_metadata, stringify_metadata
from ._uploads import bucket_limits, check_can_upload, finalise, object_metadata

TUS_RESUMABLE = "1.0.0"
OFFSET_STREAM = "application/offset+octet-stream"
EXTENSIONS = "creation,creation-with-upload,termination,expiration"
_PROTOCOL_HEADERS = (
    "Authorization",
    "Content-Type",
    "Location",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Resumable",
    "Tus-Version",
    "Upload-Concat",
    "Upload-Defer-Length",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Offset",
    "X-HTTP-Method-Override",
    "X-Requested-With",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "Forwarded",
)
_EXTRA_ALLOWED = ("Authorization", "X-Upsert", "Upload-Expires", "ApiKey", "x-signature")
_NON_NEGATIVE = re.compile(r"^(0|[1-9][0-9]*)$")
_INTEGER = re.compile(r"^-?[0-9]+$")


Step = Callable[[StorageContext, Request, "Caller | None", TusStore], Awaitable[Response]]


@dataclass(frozen=True)
class Uploader:
    """Who a TUS request uploads as: the permission test's identity, the owner, the upsert flag."""

    tester: RequestIdentity
    owner: str | None
    upsert: bool


def _base_headers() -> dict[str, str]:
    return {"Tus-Resumable": TUS_RESUMABLE, "Access-Control-Expose-Headers": ", ".join(_PROTOCOL_HEADERS)}


def _fail(status: int, message: str) -> errors.StorageError:
    return errors.tus_error(status, message)


# -- entry points (one per method) -----------------------------------------------------------------------


async def tus_options(context: StorageContext, request: Request) -> Response:
    headers = _base_headers() | {
        "Tus-Version": TUS_RESUMABLE,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(context.global_limit),
        "Access-Control-Allow-Methods": "POST, HEAD, PATCH, OPTIONS, DELETE",
        "Access-Control-Allow-Headers": ", ".join((*_PROTOCOL_HEADERS, *_EXTRA_ALLOWED)),
        "Access-Control-Max-Age": "86400",
    }
    return Response(status_code=204, headers=headers)


def handler(step: Step, tus: TusStore, *, signed: bool) -> Callable[[StorageContext, Request], Awaitable[Response]]:
    """Authenticate (JSON errors), check the protocol headers, then run ``step`` with tus error rendering."""

    async def run(context: StorageContext, request: Request) -> Response:
        caller = None if signed else authenticate(request, context)
        try:
            _check_protocol(request)
            return await step(context, request, caller, tus)
        except psycopg.Error as error:
            return errors.from_database(error).tus_response(_base_headers())
        except errors.StorageError as error:
            return error.tus_response(_base_headers())

    run.__name__ = f"tus_{step.__name__}" + ("_signed" if signed else "")
    return run


async def create_upload(context: StorageContext, request: Request, caller: Caller | None, tus: TusStore) -> Response:
    length, metadata = _creation_headers(request)
    upload_id = UploadId.new(metadata.get("bucketName") or "", metadata.get("objectName") or "")
    uploader = _uploader(context, request, upload_id, caller, "storage.tus.upload.create")
    limits = await bucket_limits(context, request, upload_id.bucket, "storage.tus.upload.create")
    if length > min(limits.file_size_limit or context.global_limit, context.global_limit):
        raise _fail(413, "Maximum size exceeded\n")
    upload = ResumableUpload(
        upload_id.bucket, upload_id.object_name, upload_id.version, length, _normalised(metadata), uploader.upsert
    )
    await _test_permission(context, upload, uploader)
    limits.check_mime_type(_stored_mime_type(upload), upload.object_name)
    tus.create(upload)
    headers = _base_headers() | {"Location": _upload_url(request, upload_id)}
    async with tus.lock(upload_id):
        offset = 0
        if request.headers.get("content-type") == OFFSET_STREAM:
            offset = await _append(request, tus, upload, 0)
            headers["Upload-Offset"] = str(offset)
        headers |= await _finish_if_complete(context, request, tus, upload, uploader, offset)
    return Response(status_code=201, headers=headers)


async def upload_status(context: StorageContext, request: Request, caller: Caller | None, tus: TusStore) -> Response:
    """``HEAD``: the server's offset; no permission test (the real service does none)."""
    upload_id = UploadId.decode(request.path_params["upload_id"])
    _uploader(context, request, upload_id, caller, "storage.tus.upload.get")
    async with tus.lock(upload_id):
        upload = _load(tus, upload_id)
        headers = _base_headers() | {
            "Cache-Control": "no-store",
            "Upload-Offset": str(tus.offset(upload)),
            "Upload-Length": str(upload.size),
        }
    if upload.metadata:
        headers["Upload-Metadata"] = stringify_metadata(upload.metadata)
    return Response(status_code=200, headers=headers)


async def append_chunk(context: StorageContext, request: Request, caller: Caller | None, tus: TusStore) -> Response:
    upload_id = UploadId.decode(request.path_params["upload_id"])
    claimed = request.headers.get("upload-offset")
    if claimed is None:
        raise _fail(403, "Upload-Offset header required\n")
    if request.headers.get("content-type") is None:
        raise _fail(403, "Content-Type header required\n")
    upload = _load(tus, upload_id)
    uploader = _uploader(context, request, upload_id, caller, "storage.tus.upload.part", upload.upsert)
    await _test_permission(context, upload, uploader)
    await bucket_limits(context, request, upload_id.bucket, "storage.tus.upload.part")
    async with tus.lock(upload_id):
        upload = _load(tus, upload_id)
        offset = tus.offset(upload)
        if offset != int(claimed):
            raise _fail(409, "Upload-Offset conflict\n")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and offset + int(declared) > upload.size:
            raise _fail(413, "upload's size exceeded\n")
        if not upload.completed:
            offset = await _append(request, tus, upload, offset)
        headers = _base_headers() | {"Upload-Offset": str(offset)}
        headers |= await _finish_if_complete(context, request, tus, upload, uploader, offset)
    return Response(status_code=204, headers=headers)


async def abort_upload(context: StorageContext, request: Request, caller: Caller | None, tus: TusStore) -> Response:
    upload_id = UploadId.decode(request.path_params["upload_id"])
    upload = _load(tus, upload_id)
    uploader = _uploader(context, request, upload_id, caller, "storage.tus.upload.delete", upload.upsert)
    await _test_permission(context, upload, uploader)
    async with tus.lock(upload_id):
        upload = _load(tus, upload_id)
        if upload.completed or tus.offset(upload) == upload.size:
            raise _fail(400, "Cannot terminate an already completed upload")
        tus.remove(upload)
    return Response(status_code=204, headers=_base_headers())


# -- steps ------------------------------------------------------------------------------------------------


def _check_protocol(request: Request) -> None:
    """``Tus-Resumable`` on every request (412) and well-formed protocol headers (400)."""
    if not request.headers.get("tus-resumable"):
        raise _fail(412, "Tus-Resumable Required\n")
    invalid = [name for name, value in request.headers.items() if not _valid_header(request.method, name, value)]
    if invalid:
        raise _fail(400, f"Invalid {' '.join(invalid)}\n")


def _valid_header(method: str, name: str, value: str) -> bool:
    if name in ("upload-offset", "upload-length"):
        return bool(_NON_NEGATIVE.match(value))
    if name == "upload-metadata":
        try:
            parse_metadata(value)
        except ValueError:
            return False
        return True
    checks = {
        "upload-defer-length": value == "1",
        "tus-resumable": value == TUS_RESUMABLE,
        "x-forwarded-proto": value in ("http", "https"),
        "upload-concat": value == "partial" or value.startswith("final;"),
        "content-type": method != "PATCH" or value == OFFSET_STREAM,
    }
    return checks.get(name, True)


def _creation_headers(request: Request) -> tuple[int, dict[str, str | None]]:
    headers = request.headers
    if "upload-concat" in headers:
        raise _fail(
            501, "Concatenation extension is not (yet) supported. Disable parallel uploads in the tus client.\n"
        )
    if "upload-defer-length" in headers:
        raise _fail(501, "creation-defer-length extension is not (yet) supported.\n")
    length = headers.get("upload-length")
    if length is None:
        raise _fail(400, "Upload-Length or Upload-Defer-Length header required\n")
    raw_metadata = headers.get("upload-metadata")
    if not raw_metadata:
        raise errors.metadata_required()
    return int(length), parse_metadata(raw_metadata)


def _normalised(metadata: dict[str, str | None]) -> dict[str, str | None]:
    """``cacheControl`` ``3600`` -> ``max-age=3600``, anything else -> ``no-cache`` (as onCreate does)."""
    cache = metadata.get("cacheControl") or ""
    return {**metadata, "cacheControl": f"max-age={cache}" if _INTEGER.match(cache) else "no-cache"}


def _uploader(
    context: StorageContext,
    request: Request,
    upload_id: UploadId,
    caller: Caller | None,
    operation: str,
    stored_upsert: bool = False,
) -> Uploader:
    """The JWT's caller, or for ``/sign`` routes the owner and upsert flag of the ``x-signature`` token."""
    if caller is not None:
        upsert = stored_upsert or request.headers.get("x-upsert") == "true"
        return Uploader(user_identity(request, caller, operation), caller.sub, upsert)
    signature = request.headers.get("x-signature")
    if not signature:
        raise errors.invalid_signature("Missing x-signature header")
    payload = signed_urls.verify(context, signature, upload_id.bucket, upload_id.object_name, signed_urls.UPLOAD)
    owner = payload.get("owner") if isinstance(payload.get("owner"), str) else None
    return Uploader(service_identity(request, context, operation), owner, bool(payload.get("upsert")))


async def _test_permission(context: StorageContext, upload: ResumableUpload, uploader: Uploader) -> None:
    metadata = {"mimetype": upload.content_type, "contentLength": upload.size}
    probe = sql.ObjectDraft(
        upload.bucket,
        upload.object_name,
        uploader.owner,
        {k: v for k, v in metadata.items() if v is not None},
        upload.user_metadata,
        "1",
    )
    await check_can_upload(context, uploader.tester, probe, upsert=uploader.upsert)


def _load(tus: TusStore, upload_id: UploadId) -> ResumableUpload:
    upload = tus.load(upload_id)
    if upload is None:
        raise _fail(404, "The file for this url was not found\n")
    if upload.expired():
        tus.remove(upload)
        raise _fail(410, "The file for this url no longer exists\n")
    return upload


async def _append(request: Request, tus: TusStore, upload: ResumableUpload, offset: int) -> int:
    """Append the body at ``offset``; bytes that arrived before a disconnect are kept (that is the point)."""
    writer = StagingWriter(tus.part_path(upload.upload_id), upload.size, append=True)
    try:
        async for chunk in request.stream():
            await writer.write(chunk)
            if writer.truncated:
                break
    except ClientDisconnect:
        await writer.finish()
        raise
    received = await writer.finish()
    if received.truncated:
        raise _fail(413, "Maximum size exceeded\n")
    return received.size


async def _finish_if_complete(
    context: StorageContext, request: Request, tus: TusStore, upload: ResumableUpload, uploader: Uploader, offset: int
) -> dict[str, str]:
    """Finalise at ``Upload-Length`` (``Tus-Complete: 1``); otherwise say when the upload expires."""
    if offset < upload.size:
        return {"Upload-Expires": formatdate(upload.expires_at, usegmt=True)}
    if not upload.completed:
        await _finalise_object(context, request, tus, upload, uploader)
    return {"Tus-Complete": "1"}


def _stored_mime_type(upload: ResumableUpload) -> str:
    """The type the object gets; without ``contentType`` metadata it is octet-stream, checked like any other.

    (Storage itself checks only a declared ``contentType`` at creation, which lets an upload without one past
    a bucket's ``allowed_mime_types``; its standard uploads default to octet-stream and check that, as here.)
    """
    return upload.content_type or "application/octet-stream"


async def _finalise_object(
    context: StorageContext, request: Request, tus: TusStore, upload: ResumableUpload, uploader: Uploader
) -> None:
    """Same limits and the same finalisation as a standard upload; the part file is kept until it worked."""
    operation = "storage.tus.upload.part"
    limits = await bucket_limits(context, request, upload.bucket, operation)
    if upload.size > limits.size_limit(context.global_limit, upload.object_name):
        raise errors.entity_too_large()
    mime_type = _stored_mime_type(upload)
    limits.check_mime_type(mime_type, upload.object_name)
    part = tus.part_path(upload.upload_id)
    staged = StagedBytes(part, upload.size, await file_md5(part), truncated=False)
    committed = context.store.link_file(part, upload.version)
    metadata = object_metadata(
        staged, mime_type, upload.metadata.get("cacheControl") or "no-cache", os.stat(committed).st_mtime
    )
    draft = sql.ObjectDraft(
        upload.bucket, upload.object_name, uploader.owner, metadata, upload.user_metadata, upload.version
    )
    await finalise(context, request, draft, operation)
    upload.completed = True
    tus.save(upload)
    part.unlink(missing_ok=True)


def _upload_url(request: Request, upload_id: UploadId) -> str:
    """Absolute URL of the upload, as the client reached the gateway (``/sign`` kept for signed uploads)."""
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or request.url.netloc
    base = request.scope.get("root_path", "") + "/upload/resumable"
    if request.url.path.rstrip("/").endswith("/resumable/sign"):
        base += "/sign"
    return f"{proto}://{host}{base}/{upload_id.encode()}"


__all__ = [
    "EXTENSIONS",
    "TUS_RESUMABLE",
    "Step",
    "abort_upload",
    "append_chunk",
    "create_upload",
    "handler",
    "tus_options",
    "upload_status",
]
