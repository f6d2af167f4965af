"""The one error tree of lora-pipeline.

::

    LoraPipelineError
    ├── ConfigError (ValueError)              a setting is missing, malformed or contradictory
    ├── DatasetValidationError (ValueError)   a dataset failed validation; carries the report
    │   └── TrainingDataError                 (lora_pipeline.train) nothing trainable is left after filtering
    ├── GateBlocked                           a regression gate decided "block"; carries the report
    ├── WaitTimeout (TimeoutError)            a wait_for_* poller ran out of time
    ├── MigrationError                        migrations could not be applied or verified
    │   ├── MigrationGap                      numbering has a hole or a duplicate
    │   └── MigrationChecksumMismatch         an applied migration was edited afterwards
    ├── DatabaseUnreachable                   a --db-url that cannot be connected to
    ├── ArtifactIntegrityError                a downloaded file does not match its recorded SHA-256
    └── APIError                              an HTTP service (Supabase, RunPod) refused a request
        ├── BadRequest                        400: malformed input, check violations, bad filters
        │   ├── NotNullViolation              23502; names the column
        │   └── InvalidTransition             a job status change the lifecycle forbids
        ├── AuthenticationError               401: missing, malformed, expired or unknown key or token
        ├── PermissionDenied                  42501 / 403: Postgres (roles, RLS, grants) refused
        ├── NotFound                          404 / PGRST116 with no row / NoSuchKey
        │   └── DownloadTokenError            a download token that cannot be redeemed
        │       ├── TokenNotFound             no such token
        │       ├── TokenExpired              past its expiry
        │       ├── TokenAlreadyUsed          redeemed before (single use)
        │       └── TokenRevoked              revoked by its owner
        ├── Conflict                          409: unique or foreign-key violation, duplicate object
        ├── PayloadTooLarge                   413: over a bucket's or the service's size limit
        ├── UnsupportedMediaType              415: a MIME type the bucket refuses
        ├── RateLimited                       429; ``retry_after`` seconds when the server said
        ├── Timeout                           a statement timeout (57014) or a client-side timeout
        ├── ServiceUnavailable                5xx, 08*/53* SQLSTATEs
        │   └── APIConnectionError            no response at all (refused, reset, DNS)
        ├── CapacityError                     RunPod has no GPU matching the offer
        ├── InsufficientFunds                 RunPod balance or spend limit (402 on REST v2)
        └── APIRetired                        410: the API version was switched off; upgrade, never retry

Every error message is safe to log: values registered as secrets are redacted when an error is built.
"""

from __future__ import annotations

from typing import Any

from ._logging import redact


class LoraPipelineError(Exception):
    """Root of every error raised by lora-pipeline."""

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[LoraPipelineError], state: dict[str, Any]) -> LoraPipelineError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class ConfigError(LoraPipelineError, ValueError):
    """A setting is missing, malformed or contradictory. The message names the argument, the env vars
    tried and the fix."""

    def __init__(self, message: str, *, argument: str | None = None, env_names: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.argument = argument
        self.env_names = env_names


class DatasetValidationError(LoraPipelineError, ValueError):
    """A dataset file failed validation; ``report`` holds every finding. Nothing was uploaded."""

    def __init__(self, message: str, *, report: Any) -> None:
        super().__init__(message)
        self.report = report


class GateBlocked(LoraPipelineError):
    """A regression gate decided ``block``; ``report`` is the :class:`GateReport`."""

    def __init__(self, message: str, *, report: Any) -> None:
        super().__init__(message)
        self.report = report


class WaitTimeout(LoraPipelineError, TimeoutError):
    """A ``wait_for_*`` poller ran out of time; names the id, the last state and the seconds waited."""

    def __init__(self, message: str, *, resource_id: str, last_state: str | None, waited: float) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.last_state = last_state
        self.waited = waited


class MigrationError(LoraPipelineError):
    """Migrations could not be applied or verified; nothing was half-applied."""


class MigrationGap(MigrationError):
    """Migration numbering has a hole or a duplicate."""


class MigrationChecksumMismatch(MigrationError):
    """A migration that is already applied was edited afterwards."""


class DatabaseUnreachable(LoraPipelineError):
    """A database URL that cannot be connected to."""


class ArtifactIntegrityError(LoraPipelineError):
    """A downloaded file does not match the SHA-256 recorded when it was uploaded."""


class APIError(LoraPipelineError):
    """An HTTP service refused a request.

    Attributes:
        status: HTTP status (for Storage, the real status carried in the body's ``statusCode``).
        code: SQLSTATE, ``PGRSTnnn``, Storage error code, Auth ``error_code`` or RunPod code.
        hint / details: PostgREST's ``hint`` and ``details`` when present.
        request_id: the server's request id when it sent one.
        role: the key role the request ran as (``service``, ``anon``, ``user``, ``pod``).
        resource: the table, bucket, function or id the request was about.
        suggestion: one line on what to check.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        hint: str | None = None,
        details: Any = None,
        request_id: str | None = None,
        role: str | None = None,
        resource: str | None = None,
        suggestion: str | None = None,
        service: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.hint = redact(hint) if isinstance(hint, str) else hint
        self.details = redact(details) if isinstance(details, str) else details
        self.request_id = request_id
        self.role = role
        self.resource = resource
        self.suggestion = suggestion
        self.service = service
        self.raw_message = redact(message)
        super().__init__(self._compose(message))

    def _compose(self, message: str) -> str:
        head = f"[{self.code}] {message}" if self.code else message
        context = [f"HTTP {self.status}" if self.status else None]
        context += [f"role {self.role}" if self.role else None, f"on {self.resource}" if self.resource else None]
        context += [f"request {self.request_id}" if self.request_id else None]
        parts = [p for p in context if p]
        text = f"{head} ({', '.join(parts)})" if parts else head
        if self.hint:
            text += f"\n  hint: {self.hint}"
        if self.suggestion:
            text += f"\n  what to check: {self.suggestion}"
        return text


class BadRequest(APIError):
    """400: malformed input, a check violation, an unknown column or a bad filter."""


class NotNullViolation(BadRequest):
    """23502: a NOT NULL column got no value; ``column`` names it."""

    def __init__(self, message: str, *, column: str | None = None, **kwargs: Any) -> None:
        self.column = column
        super().__init__(message, **kwargs)


class InvalidTransition(BadRequest):
    """A job status change that the lifecycle (DESIGN §5) forbids; refused by the SQL trigger."""


class AuthenticationError(APIError):
    """401: the key or token is missing, malformed, expired or unknown."""


class PermissionDenied(APIError):
    """42501 / 403: Postgres refused the operation for this role (a grant or a row-level security policy)."""


class NotFound(APIError):
    """404: no such row, object, table, function or pod (or one this role cannot see)."""


class DownloadTokenError(NotFound):
    """A dataset download token that cannot be redeemed."""


class TokenNotFound(DownloadTokenError):
    """No token with this value exists."""


class TokenExpired(DownloadTokenError):
    """The token is past its expiry."""


class TokenAlreadyUsed(DownloadTokenError):
    """The token was redeemed before; tokens are single use."""


class TokenRevoked(DownloadTokenError):
    """The token's owner revoked it."""


class Conflict(APIError):
    """409: a unique or foreign-key violation, or an object that already exists."""


class PayloadTooLarge(APIError):
    """413: the body is over a bucket's or the service's size limit."""


class UnsupportedMediaType(APIError):
    """415: a MIME type the bucket does not allow."""


class RateLimited(APIError):
    """429: slow down; ``retry_after`` holds the server's hint in seconds when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class Timeout(APIError):
    """The statement timed out in Postgres (57014) or the client gave up waiting for a response."""


class ServiceUnavailable(APIError):
    """5xx, or a database connection / resource SQLSTATE (08*, 53*)."""


class APIConnectionError(ServiceUnavailable):
    """No response at all: connection refused, reset or dropped."""


class CapacityError(APIError):
    """RunPod has no GPU matching the requested offer (either wire shape)."""


class InsufficientFunds(APIError):
    """RunPod refused for balance or spend-limit reasons."""


class APIRetired(APIError):
    """410 Gone: the API this client speaks was switched off (RunPod GraphQL goes in early 2027). Not retried."""


__all__ = [
    "APIConnectionError",
    "APIError",
    "APIRetired",
    "ArtifactIntegrityError",
    "AuthenticationError",
    "BadRequest",
    "CapacityError",
    "ConfigError",
    "Conflict",
    "DatabaseUnreachable",
    "DatasetValidationError",
    "DownloadTokenError",
    "GateBlocked",
    "InsufficientFunds",
    "InvalidTransition",
    "LoraPipelineError",
    "MigrationChecksumMismatch",
    "MigrationError",
    "MigrationGap",
    "NotFound",
    "NotNullViolation",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "ServiceUnavailable",
    "Timeout",
    "TokenAlreadyUsed",
    "TokenExpired",
    "TokenNotFound",
    "TokenRevoked",
    "UnsupportedMediaType",
    "WaitTimeout",
]
