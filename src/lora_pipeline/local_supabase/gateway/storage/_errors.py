"""Storage API errors: one exception type, the real service's codes and messages, and its two renderings.

The JSON envelope (research §5.2) goes out as HTTP 400 with the real status as a *string* in ``statusCode``;
500 stays 500 and a few errors (a database timeout, a bad ``Range``) carry their own HTTP status. The TUS
endpoint renders the same errors as the tus server does: the real status and the message as plain text.
"""

from __future__ import annotations

import psycopg
from starlette.responses import Response

from ...db import PgFailure
from ..errors import storage_error


class StorageError(Exception):
    """An error the Storage API renders to the client (never a stack trace)."""

    def __init__(
        self, status: int, code: str, message: str, *, error: str | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error = error or code
        self.http_status = http_status

    def response(self) -> Response:
        """The JSON envelope: HTTP 400 unless the error is internal or carries its own HTTP status."""
        http_status = self.http_status or (500 if self.status == 500 else 400)
        return storage_error(self.status, self.code, self.message, error=self.error, http_status=http_status)

    def tus_response(self, headers: dict[str, str]) -> Response:
        """The tus server's rendering: the real status, the message as the body."""
        status = self.status if 100 <= self.status < 600 else 500
        return Response(self.message, status_code=status, headers=headers, media_type="text/plain")


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", error="Bucket not found")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", error="not_found")


def missing_bytes() -> StorageError:
    """The row exists but the bytes do not (the backend's 404, rendered by the asset renderer)."""
    return StorageError(404, "NoSuchKey", "The resource was not found", error="Not found")


def access_denied(message: str = "Access denied") -> StorageError:
    return StorageError(403, "AccessDenied", message or "Access denied", error="Unauthorized")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message or "Invalid Request")


def no_content(message: str = "No content provided") -> StorageError:
    return invalid_request(message)


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def invalid_bucket_name() -> StorageError:
    return StorageError(400, "InvalidBucketName", "Bucket name invalid", error="Invalid Input")


def invalid_mime_type(mime_type: str) -> StorageError:
    return StorageError(415, "InvalidMimeType", f"mime type {mime_type} is not supported", error="invalid_mime_type")


def entity_too_large(entity: str = "object") -> StorageError:
    return StorageError(
        413, "EntityTooLarge", f"The {entity} exceeded the maximum allowed size", error="Payload too large"
    )


def invalid_file_size_limit() -> StorageError:
    return invalid_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")


def invalid_jwt(message: str) -> StorageError:
    return StorageError(400, "InvalidJWT", message or "Invalid JWT")


def invalid_signature(message: str = "Invalid signature") -> StorageError:
    return StorageError(400, "InvalidSignature", message)


def expired_token() -> StorageError:
    return StorageError(400, "ExpiredToken", "The provided token has expired.")


def key_already_exists() -> StorageError:
    return StorageError(409, "KeyAlreadyExists", "The resource already exists", error="Duplicate")


def bucket_already_exists() -> StorageError:
    return StorageError(409, "BucketAlreadyExists", "The resource already exists", error="Duplicate")


def bucket_not_empty() -> StorageError:
    return StorageError(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty")


def invalid_range() -> StorageError:
    return StorageError(416, "InvalidRange", "invalid range provided", error="invalid_range", http_status=416)


def invalid_upload_id(message: str = "Invalid upload id") -> StorageError:
    return StorageError(400, "InvalidUploadId", message)


def metadata_required() -> StorageError:
    return invalid_request("Metadata header is required")


def internal_error() -> StorageError:
    return StorageError(500, "InternalError", "Internal Server Error", error="Internal")


def tus_error(status: int, message: str) -> StorageError:
    """A tus protocol error (its body text is what tus clients show)."""
    return StorageError(status, "TusError", message)


def from_database(error: psycopg.Error) -> StorageError:
    """Storage's mapping of a Postgres error raised while running its SQL (storage/database/errors.ts)."""
    failure = PgFailure.from_error(error)
    code = failure.sqlstate
    if code == "42501":
        rls = "row-level security" in failure.message
        return access_denied("new row violates row-level security policy" if rls else failure.message)
    if code == "23505":
        return StorageError(409, "ResourceAlreadyExists", "The resource already exists", error="Duplicate")
    if code == "23503":
        if failure.detail and "is still referenced from table" in failure.detail:
            return StorageError(
                409,
                "ResourceReferenced",
                "The resource could not be updated or removed due to a foreign key constraint",
            )
        return StorageError(404, "InvalidRequest", "The related resource does not exist")
    if code == "57014":
        return StorageError(544, "DatabaseTimeout", "The connection to the database timed out", http_status=544)
    if code == "55P03":
        return StorageError(423, "ResourceLocked", "The resource is locked")
    if code in ("22P02", "22021", "22P05"):  # the last two: NUL bytes in a name, prefix or metadata
        return StorageError(400, "InvalidParameter", failure.message or "Invalid Parameter value")
    if code and (code.startswith("54") or code in ("22001", "22003", "22007", "22008")):
        # program limits (index row size, nesting depth) and out-of-range values: the input's fault
        return StorageError(400, "InvalidParameter", failure.message or "Invalid Parameter value")
    return StorageError(500, "DatabaseError", f"database error, code: {code}")


def is_unique_violation(error: BaseException) -> bool:
    return isinstance(error, psycopg.errors.UniqueViolation)


__all__ = [
    "StorageError",
    "access_denied",
    "bucket_already_exists",
    "bucket_not_empty",
    "entity_too_large",
    "expired_token",
    "from_database",
    "internal_error",
    "invalid_bucket_name",
    "invalid_file_size_limit",
    "invalid_jwt",
    "invalid_key",
    "invalid_mime_type",
    "invalid_range",
    "invalid_request",
    "invalid_signature",
    "invalid_upload_id",
    "is_unique_violation",
    "key_already_exists",
    "metadata_required",
    "missing_bytes",
    "no_content",
    "no_such_bucket",
    "no_such_key",
    "tus_error",
]
