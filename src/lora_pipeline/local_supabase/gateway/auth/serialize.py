"""User, identity and session JSON exactly as GoTrue's Go structs marshal them (research §6.2).

Field order follows the structs; optional timestamps are omitted when unset (``omitempty``), while ``email`` and
``phone`` are always present (``""`` when unset). ``identities`` is ``null`` where GoTrue does not load them
(the admin user list). supabase_auth's pydantic ``User`` and ``Session`` models parse these shapes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .users import Identity, User

_OPTIONAL_USER_TIMES = ("email_confirmed_at", "invited_at")
_OPTIONAL_CONTACT_TIMES = (
    "phone_confirmed_at",
    "confirmation_sent_at",
    "confirmed_at",
    "recovery_sent_at",
    "last_sign_in_at",
)


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with the fraction trimmed, as Go's ``time.Time`` marshals (``...T10:11:12.3456Z``)."""
    text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def user_json(user: User) -> dict[str, Any]:
    """The ``models.User`` JSON."""
    body: dict[str, Any] = {"id": str(user.id), "aud": user.aud, "role": user.role, "email": user.email or ""}
    _put_times(body, user, _OPTIONAL_USER_TIMES)
    body["phone"] = user.phone or ""
    _put_times(body, user, _OPTIONAL_CONTACT_TIMES)
    body["app_metadata"] = user.app_metadata
    body["user_metadata"] = user.user_metadata
    body["identities"] = None if user.identities is None else [identity_json(i) for i in user.identities]
    body["created_at"] = timestamp(user.created_at)
    body["updated_at"] = timestamp(user.updated_at)
    if user.banned_until is not None:
        body["banned_until"] = timestamp(user.banned_until)
    if user.deleted_at is not None:
        body["deleted_at"] = timestamp(user.deleted_at)
    body["is_anonymous"] = user.is_anonymous
    return body


def _put_times(body: dict[str, Any], user: User, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(user, name)
        if value is not None:
            body[name] = timestamp(value)


def identity_json(identity: Identity) -> dict[str, Any]:
    """The ``models.Identity`` JSON: the row id is ``identity_id``, the provider's subject is ``id``."""
    body: dict[str, Any] = {
        "identity_id": str(identity.id),
        "id": identity.provider_id,
        "user_id": str(identity.user_id),
        "identity_data": identity.identity_data,
        "provider": identity.provider,
    }
    if identity.last_sign_in_at is not None:
        body["last_sign_in_at"] = timestamp(identity.last_sign_in_at)
    body["created_at"] = timestamp(identity.created_at)
    body["updated_at"] = timestamp(identity.updated_at)
    if identity.email:
        body["email"] = identity.email
    return body


def session_json(
    access_token: str, expires_at: int, refresh_token: str, user: User, weak_password: dict[str, Any] | None = None
) -> dict[str, Any]:
    """GoTrue's ``AccessTokenResponse``."""
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": max(0, expires_at - int(datetime.now(timezone.utc).timestamp())),
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "user": user_json(user),
    }
    if weak_password is not None:
        body["weak_password"] = weak_password
    return body


__all__ = ["identity_json", "session_json", "timestamp", "user_json"]
