"""Request bodies and field validation, with GoTrue's answers for bad input.

GoTrue decodes each body with Go's ``json.Unmarshal`` into a params struct: unknown keys are ignored, ``null``
leaves a field unset, and a document that is not JSON, not an object, or has a value of the wrong type for a
known field is a 400 ``bad_json``. :func:`decode_body` reproduces that for a field map such as
``{"email": str, "data": dict}``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from starlette.requests import Request

from ..json_limits import parse_json
from .errors import AuthFailure, bad_request, weak_password

MAX_BODY_BYTES = 1 << 20
"""GoTrue's request body limit (1 MiB)."""
MIN_PASSWORD_LENGTH = 6
MAX_PASSWORD_LENGTH = 72
"""bcrypt only reads 72 bytes; GoTrue refuses longer passwords rather than silently truncating them."""

_GO_TYPE_NAMES: dict[type, str] = {str: "string", bool: "bool", dict: "map[string]interface {}", int: "int"}
_EMAIL = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
_E164 = re.compile(r"^[1-9][0-9]{1,14}$")
_CODE_CHALLENGE = re.compile(r"^[a-zA-Z._~0-9-]+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


async def read_body(request: Request) -> bytes:
    """The request body, refused with GoTrue's 413 past :data:`MAX_BODY_BYTES`."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise AuthFailure(413, "request_entity_too_large", f"Request body too large (max {MAX_BODY_BYTES} bytes)")
    return bytes(body)


async def read_params(request: Request, fields: Mapping[str, type]) -> dict[str, Any]:
    """:func:`decode_body` of the request's body."""
    return decode_body(await read_body(request), fields)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def decode_body(raw: bytes, fields: Mapping[str, type]) -> dict[str, Any]:
    """The known, non-null fields of a JSON object body; anything Go would refuse is a 400 ``bad_json``."""
    try:
        document = parse_json(raw.decode("utf-8"), parse_constant=_reject_constant) if raw.strip() else _missing()
    except (ValueError, UnicodeDecodeError) as error:
        raise _bad_json(str(error)) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise _bad_json(f"json: cannot unmarshal {_json_kind(document)} into Go value of type struct")
    return {name: _typed(name, document[name], kind) for name, kind in fields.items() if document.get(name) is not None}


def _missing() -> Any:
    raise ValueError("unexpected end of JSON input")


def _typed(name: str, value: Any, kind: type) -> Any:
    matches = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not matches:
        raise _bad_json(
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field .{name} "
            f"of type {_GO_TYPE_NAMES.get(kind, kind.__name__)}"
        )
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _bad_json(reason: str) -> AuthFailure:
    return bad_request("bad_json", f"Could not parse request body as JSON: {reason}")


def validate_email(email: str) -> str:
    """The lower-cased address, or GoTrue's 400 ``validation_failed``."""
    if not email:
        raise bad_request("validation_failed", "An email address is required")
    if len(email) > 255:
        raise bad_request("validation_failed", "An email address is too long")
    if not _EMAIL.match(email):
        raise bad_request("validation_failed", "Unable to validate email address: invalid format")
    return email.lower()


def validate_phone(phone: str) -> str:
    """E.164 digits without ``+`` or spaces, as GoTrue stores phones."""
    digits = phone.removeprefix("+").replace(" ", "")
    if not _E164.match(digits):
        raise bad_request("validation_failed", "Invalid phone number format (E.164 required)")
    return digits


def check_password_strength(password: str) -> None:
    """GoTrue's default policy: at most 72 bytes (400), at least 6 characters (422 ``weak_password``)."""
    if len(password.encode()) > MAX_PASSWORD_LENGTH:
        raise bad_request("validation_failed", f"Password cannot be longer than {MAX_PASSWORD_LENGTH} characters")
    reason = weak_password_reason(password)
    if reason is not None:
        raise weak_password(reason["message"], reason["reasons"])


def weak_password_reason(password: str) -> dict[str, Any] | None:
    """The ``weak_password`` object a sign-in response carries when the password breaks today's policy."""
    if len(password) >= MIN_PASSWORD_LENGTH:
        return None
    return {"message": f"Password should be at least {MIN_PASSWORD_LENGTH} characters.", "reasons": ["length"]}


def validate_pkce(method: str, challenge: str) -> None:
    """Both PKCE fields or neither; supabase-py sends them on sign-up (its default flow is PKCE)."""
    if bool(method) != bool(challenge):
        raise bad_request("validation_failed", "PKCE flow requires code_challenge_method and code_challenge")
    if not challenge:
        return
    if not 43 <= len(challenge) <= 128:
        raise bad_request("validation_failed", "code challenge has to be between 43 and 128 characters")
    if not _CODE_CHALLENGE.match(challenge):
        raise bad_request(
            "validation_failed",
            "code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes",
        )


_MAX_GO_DURATION_SECONDS = (2**63 - 1) / 1e9


def parse_ban_duration(text: str) -> timedelta:
    """A Go duration (``"24h"``, ``"1h30m"``, ``"none"`` = lift the ban) as GoTrue's ``ban_duration`` takes it."""
    if text == "none":
        return timedelta(0)
    sign, body = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.removeprefix("+"))
    if body == "0":
        return timedelta(0)
    parts = _DURATION_PART.findall(body)
    if not body or "".join(number + unit for number, unit in parts) != body:
        raise bad_request("validation_failed", f'invalid format for ban duration: time: invalid duration "{text}"')
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds > _MAX_GO_DURATION_SECONDS:  # Go's Duration is int64 nanoseconds (about 292 years)
        raise bad_request("validation_failed", f'invalid format for ban duration: time: invalid duration "{text}"')
    return timedelta(seconds=sign * seconds)


def parse_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


__all__ = [
    "MAX_BODY_BYTES",
    "check_password_strength",
    "decode_body",
    "parse_ban_duration",
    "parse_uuid",
    "read_body",
    "read_params",
    "validate_email",
    "validate_phone",
    "validate_pkce",
    "weak_password_reason",
]
