"""Input rules of the Storage API (research §5.3): object keys, bucket names, MIME types, sizes, expiries.

Object keys follow Supabase's ASCII whitelist and, stricter than Supabase, refuse ``.``/``..`` segments,
empty segments, a leading ``/`` and NUL bytes. Bytes never live under a key-derived path anyway (see
``_disk``), so these rules are about clean names, not about the filesystem.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from . import _errors as errors

_OBJECT_KEY = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$")
_BUCKET_NAME = re.compile(r"^[A-Za-z0-9_!.*'() &$=@;:+,?-]+$")
_ALLOWED_MIME = re.compile(r"^([a-zA-Z0-9\-+.]+)/([a-zA-Z0-9\-+.]+)(;\s*charset=[a-zA-Z0-9\-]+)?$|\*$")
_SIZE_WITH_UNIT = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(gb|mb|kb|b)$", re.IGNORECASE)
_UNITS = {"GB": 10**9, "MB": 10**6, "KB": 1000, "B": 1}
EMPTY_FOLDER_SUFFIX = ".emptyFolderPlaceholder"
MAX_KEY_LENGTH = 1024
"""S3's key limit, which Storage inherits from its S3 backend; longer keys would also overflow the name index."""


def is_valid_key(key: str) -> bool:
    """Supabase's whitelist plus clean segments (no ``.``, ``..``, empty, leading ``/``), at most 1024 bytes."""
    if not key or len(key) > MAX_KEY_LENGTH or not _OBJECT_KEY.match(key):
        return False
    return all(segment not in ("", ".", "..") for segment in key.split("/"))


def must_be_valid_key(key: str) -> str:
    if not is_valid_key(key):
        raise errors.invalid_key(key)
    return key


def is_valid_bucket_name(name: str) -> bool:
    """Supabase's whitelist, minus ``.`` and ``..``: URL normalisation would turn ``/object/../key`` into
    another route, so such a bucket could be created but never addressed safely."""
    return 0 < len(name) < 101 and bool(_BUCKET_NAME.match(name)) and name not in (".", "..")


def must_be_valid_bucket_name(name: str) -> str:
    if not is_valid_bucket_name(name):
        raise errors.invalid_bucket_name()
    return name


def is_empty_folder(key: str) -> bool:
    return key.endswith(EMPTY_FOLDER_SUFFIX)


def validate_mime_type(mime_type: str, allowed: list[str] | None) -> None:
    """``type/*`` matches any subtype, otherwise type and subtype must be equal; an empty list allows all."""
    if not allowed:
        return
    requested = mime_type.split("/")
    if len(requested) < 2:
        raise errors.invalid_mime_type(mime_type)
    kind, subtype = requested[0], requested[1]
    for entry in allowed:
        allowed_parts = entry.split("/")
        if len(allowed_parts) < 2 or allowed_parts[0] != kind:
            continue
        if allowed_parts[1] in ("*", subtype):
            return
    raise errors.invalid_mime_type(mime_type)


def validate_allowed_mime_types(values: Any) -> list[str] | None:
    """A bucket's ``allowed_mime_types``: ``type/subtype[;charset=x]`` or ending in ``*``; blanks dropped."""
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise errors.invalid_request("body/allowed_mime_types must be array")
    for value in values:
        if len(value) > 1000 or (value and not _ALLOWED_MIME.match(value)):
            raise errors.invalid_mime_type(value)
    return [value for value in values if value]


def parse_file_size_limit(value: Any, global_limit: int) -> int | None:
    """An integer of bytes or ``"20MB"``-style text (decimal units); above the global limit is too large."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise errors.invalid_file_size_limit()
    limit = _bytes_with_unit(value) if isinstance(value, str) else int(value)
    if limit < 0:
        raise errors.invalid_file_size_limit()
    if limit > global_limit:
        raise errors.entity_too_large()
    return limit


def _bytes_with_unit(value: str) -> int:
    """``"1.5GB"`` -> 1_500_000_000 (decimal units, three significant digits as Storage rounds)."""
    match = _SIZE_WITH_UNIT.match(value)
    if not match:
        raise errors.invalid_file_size_limit()
    number = float(f"{float(match.group(1)):.3g}")
    return int(number * _UNITS[match.group(2).upper()])


def effective_size_limit(bucket_limit: int | None, global_limit: int, key: str) -> int:
    """min(bucket, global); 0 for an empty-folder placeholder."""
    if is_empty_folder(key):
        return 0
    return min(bucket_limit, global_limit) if bucket_limit is not None else global_limit


MAX_EXPIRES_IN = 2**53 - 1
"""JavaScript's largest safe integer: Storage's schema cannot hold a larger ``expiresIn`` exactly."""


def parse_expires_in(body: dict[str, Any]) -> int:
    """``expiresIn`` is required, an integer >= 1; the string ``"60"`` is coerced like Fastify does."""
    if "expiresIn" not in body:
        raise errors.invalid_request("body must have required property 'expiresIn'")
    value = _as_integer(body["expiresIn"])
    if value is None:
        raise errors.invalid_request("body/expiresIn must be integer")
    if value < 1:
        raise errors.invalid_request("body/expiresIn must be >= 1")
    if value > MAX_EXPIRES_IN:
        raise errors.invalid_request(f"body/expiresIn must be <= {MAX_EXPIRES_IN}")
    return value


def _as_integer(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\s*-?[0-9]{1,30}\s*", raw):
        return int(raw)
    return None


def is_uuid(value: str | None) -> bool:
    """Canonical lower-case UUID text (the form this service generates)."""
    if not value:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def owner_uuid(sub: str | None) -> str | None:
    """``objects.owner`` is set only when the JWT ``sub`` is a UUID; ``owner_id`` always gets the sub."""
    if not sub:
        return None
    try:
        return str(uuid.UUID(sub))
    except ValueError:
        return None


__all__ = [
    "EMPTY_FOLDER_SUFFIX",
    "effective_size_limit",
    "is_empty_folder",
    "is_uuid",
    "is_valid_bucket_name",
    "is_valid_key",
    "must_be_valid_bucket_name",
    "must_be_valid_key",
    "owner_uuid",
    "parse_expires_in",
    "parse_file_size_limit",
    "validate_allowed_mime_types",
    "validate_mime_type",
]
