"""The signed-in user's own endpoints: ``GET/PUT /user`` and ``POST /logout``; plus the informational
``/settings``, ``/health`` and ``/.well-known/jwks.json``.

The embedded stack sends no mail or SMS, so a changed email or phone takes effect at once (Supabase would
first send a confirmation link or code); everything else follows GoTrue.
"""

from __future__ import annotations

from typing import Any, cast

from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from .errors import bad_request, forbidden, json_response, unprocessable
from .guards import AuthContext, Caller, require_user
from .params import check_password_strength, decode_body, read_body, validate_email, validate_phone
from .serialize import user_json
from .sessions import LogoutScope, log_out
from .tokens import request_audience
from .users import (
    NOW,
    email_taken,
    find_by_id,
    hash_password,
    merge_metadata,
    password_matches,
    phone_taken,
    set_contact,
    update_user,
)

USER_UPDATE_FIELDS = {
    "email": str,
    "password": str,
    "current_password": str,
    "nonce": str,
    "data": dict,
    "app_metadata": dict,
    "phone": str,
    "channel": str,
    "code_challenge": str,
    "code_challenge_method": str,
}
ADMIN_GROUP = "admin"
"""GoTrue's ``GOTRUE_JWT_ADMIN_GROUP_NAME``: users with this role may change their own app_metadata."""
PROVIDERS = (
    "anonymous_users",
    "apple",
    "azure",
    "bitbucket",
    "discord",
    "facebook",
    "snapchat",
    "figma",
    "fly",
    "github",
    "gitlab",
    "google",
    "keycloak",
    "kakao",
    "linkedin",
    "linkedin_oidc",
    "notion",
    "spotify",
    "slack",
    "slack_oidc",
    "workos",
    "twitch",
    "twitter",
    "email",
    "phone",
    "zoom",
)


async def get_user(context: AuthContext, request: Request) -> Response:
    """The user of the bearer token (403 ``session_not_found`` once its session is logged out)."""
    async with context.db.admin() as conn:
        caller = await require_user(context, request, conn)
    audiences = caller.claims.audiences
    if not audiences or request_audience(request, caller.claims) != audiences[0]:
        raise bad_request("validation_failed", "Token audience doesn't match request audience")
    return json_response(user_json(caller.user))


async def update_user_endpoint(context: AuthContext, request: Request) -> Response:
    """``PUT /user``: metadata (merged), password, email, phone."""
    raw = await read_body(request)  # before taking a connection: a slow client must not hold one
    async with context.db.admin() as conn:
        caller = await require_user(context, request, conn)
        params = decode_body(raw, USER_UPDATE_FIELDS)
        await _validate_update(conn, caller, params, request_audience(request, caller.claims))
        await _apply_update(context, conn, caller, params)
        user = await find_by_id(conn, caller.user.id)
    assert user is not None
    return json_response(user_json(user))


async def _validate_update(conn: AsyncConnection[Any], caller: Caller, params: dict[str, Any], aud: str) -> None:
    user = caller.user
    if params.get("email"):
        params["email"] = validate_email(params["email"])
    if params.get("phone"):
        params["phone"] = validate_phone(params["phone"])
    if "password" in params:
        check_password_strength(params["password"])
    if "app_metadata" in params and not (user.aud == "authenticated" and user.role == ADMIN_GROUP):
        raise forbidden("not_admin", "Updating app_metadata requires admin privileges")
    if _changes(params, "email", user.email) and await email_taken(conn, params["email"], aud, other_than=user.id):
        raise unprocessable("email_exists", "A user with this email address has already been registered")
    if _changes(params, "phone", user.phone) and await phone_taken(conn, params["phone"], aud):
        raise unprocessable("phone_exists", "A user with this phone number has already been registered")
    if params.get("password") and await password_matches(conn, user, params["password"]):
        raise unprocessable("same_password", "New password should be different from the old password.")


def _changes(params: dict[str, Any], field: str, current: str | None) -> bool:
    """Whether the request sets ``field`` (GoTrue ignores empty strings) to something new."""
    return bool(params.get(field)) and params[field] != current


async def _apply_update(
    context: AuthContext, conn: AsyncConnection[Any], caller: Caller, params: dict[str, Any]
) -> None:
    user = caller.user
    if "password" in params:
        hashed = await hash_password(conn, params["password"], context.config.bcrypt_cost)
        await update_user(conn, user.id, {"encrypted_password": hashed})
        # A new password ends the user's other sessions (all of them for a token without a session).
        await log_out(conn, user.id, caller.session.id if caller.session else None, "others")
    changes: dict[str, Any] = {}
    if "data" in params:
        changes["raw_user_meta_data"] = merge_metadata(user.user_metadata, params["data"])
    if "app_metadata" in params:
        changes["raw_app_meta_data"] = merge_metadata(user.app_metadata, params["app_metadata"])
    await update_user(conn, user.id, changes)
    if _changes(params, "email", user.email):
        await set_contact(conn, user.id, "email", params["email"], verified=False)
    if _changes(params, "phone", user.phone):
        await set_contact(conn, user.id, "phone", params["phone"], verified=True)
        await update_user(conn, user.id, {"phone_confirmed_at": NOW})


async def logout(context: AuthContext, request: Request) -> Response:
    """``POST /logout?scope=global|local|others``: 204; the sessions' refresh tokens die with them."""
    async with context.db.admin() as conn:
        caller = await require_user(context, request, conn)
        scope = request.query_params.get("scope", "") or "global"
        if scope not in ("global", "local", "others"):
            raise bad_request("validation_failed", f'Unsupported logout scope "{scope}"')
        session_id = caller.session.id if caller.session else None
        await log_out(conn, caller.user.id, session_id, cast(LogoutScope, scope))
    return Response(status_code=204)


async def settings(context: AuthContext, request: Request) -> Response:
    """What this Auth offers: email and phone sign-in, sign-up open, confirmations off."""
    external = {provider: provider in ("email", "phone") for provider in PROVIDERS}
    return json_response(
        {
            "external": external,
            "disable_signup": False,
            "mailer_autoconfirm": True,
            "phone_autoconfirm": True,
            "sms_provider": "twilio",
            "saml_enabled": False,
            "saml_private_key_next_configured": False,
            "passkeys_enabled": False,
        }
    )


async def health(context: AuthContext, request: Request) -> Response:
    return json_response(
        {
            "version": "lora-pipeline-local",
            "name": "GoTrue",
            "description": "GoTrue is a user registration and authentication API",
        }
    )


async def jwks(context: AuthContext, request: Request) -> Response:
    """No public keys: every token is HS256 (supabase-py then verifies through ``GET /user``)."""
    return json_response({"keys": []}, headers={"Cache-Control": "public, max-age=600"})


__all__ = ["get_user", "health", "jwks", "logout", "settings", "update_user_endpoint"]
