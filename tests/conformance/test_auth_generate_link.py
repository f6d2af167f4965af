"""``auth.admin.generate_link``: GoTrue's email action links without mail (issue 16 §1). Every type answers
the user plus ``action_link``, ``email_otp``, ``hashed_token`` (SHA-224 of address + OTP, the value stored on
the user's row), ``verification_type`` and ``redirect_to``; users are created or refused as GoTrue does."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from supabase_auth.errors import AuthApiError

PASSWORD = "conformance-pass-123"


def _email() -> str:
    return f"link-{uuid.uuid4().hex[:12]}@example.test"


def _link(sb: Any, **params: Any) -> Any:
    return sb.run(lambda c: c.auth.admin.generate_link(params), sb.service)


def _refused(sb: Any, client: Any = None, **params: Any) -> AuthApiError:
    with pytest.raises(AuthApiError) as caught:
        sb.run(lambda c: c.auth.admin.generate_link(params), client or sb.service)
    return caught.value


def _confirmed_user(sb: Any) -> Any:
    attributes = {"email": _email(), "password": PASSWORD, "email_confirm": True}
    return sb.run(lambda c: c.auth.admin.create_user(attributes), sb.service).user


def _token_columns(sb: Any, user_id: str) -> dict[str, Any]:
    row = sb.target.sql(
        "select confirmation_token, recovery_token, email_change, email_change_token_new,"
        " email_change_token_current, invited_at is not null, email_confirmed_at is not null"
        " from auth.users where id = %s",
        (user_id,),
    )[0]
    names = ("confirmation", "recovery", "email_change", "change_new", "change_current", "invited", "confirmed")
    return dict(zip(names, row, strict=True))


def _query(action_link: str) -> dict[str, str]:
    parts = urlsplit(action_link)
    assert parts.path.endswith("/auth/v1/verify")
    return {name: values[0] for name, values in parse_qs(parts.query).items()}


def test_signup_link_creates_an_unconfirmed_user_holding_the_hashed_token(sb: Any) -> None:
    email = _email()
    link = _link(sb, type="signup", email=email, password=PASSWORD, options={"data": {"plan": "pro"}})
    props, user = link.properties, link.user
    assert (props.verification_type, user.email, user.email_confirmed_at) == ("signup", email, None)
    assert user.user_metadata["plan"] == "pro"
    assert props.email_otp.isdigit() and len(props.email_otp) == 6
    assert props.hashed_token == hashlib.sha224((email + props.email_otp).encode()).hexdigest()
    assert _query(props.action_link) == {
        "token": props.hashed_token,
        "type": "signup",
        "redirect_to": props.redirect_to,
    }
    assert _token_columns(sb, user.id) | {"confirmation": props.hashed_token} == _token_columns(sb, user.id)
    assert _token_columns(sb, user.id)["confirmed"] is False
    with pytest.raises(AuthApiError) as unconfirmed:
        sb.run(lambda c: c.auth.sign_in_with_password({"email": email, "password": PASSWORD}))
    assert unconfirmed.value.code == "email_not_confirmed"


def test_invite_link_creates_an_invited_user_without_a_password(sb: Any) -> None:
    link = _link(sb, type="invite", email=_email())
    assert link.properties.verification_type == "invite"
    assert link.user.invited_at is not None
    columns = _token_columns(sb, link.user.id)
    assert (columns["confirmation"], columns["invited"]) == (link.properties.hashed_token, True)


def test_magic_link_signs_up_an_unknown_address_and_uses_the_recovery_token_otherwise(sb: Any) -> None:
    unknown = _link(sb, type="magiclink", email=_email())
    assert unknown.properties.verification_type == "signup"
    assert _token_columns(sb, unknown.user.id)["confirmation"] == unknown.properties.hashed_token
    user = _confirmed_user(sb)
    known = _link(sb, type="magiclink", email=user.email)
    assert known.properties.verification_type == "magiclink"
    assert _query(known.properties.action_link)["type"] == "magiclink"
    assert _token_columns(sb, user.id)["recovery"] == known.properties.hashed_token
    assert known.user.recovery_sent_at is not None


def test_recovery_link_needs_an_existing_user(sb: Any) -> None:
    missing = _refused(sb, type="recovery", email=_email())
    assert (missing.status, missing.code, missing.message) == (404, "user_not_found", "User with this email not found")
    user = _confirmed_user(sb)
    link = _link(sb, type="recovery", email=user.email)
    assert _token_columns(sb, user.id)["recovery"] == link.properties.hashed_token


@pytest.mark.parametrize("kind", ["email_change_current", "email_change_new"])
def test_email_change_links_record_the_new_address(sb: Any, kind: str) -> None:
    user, new_email = _confirmed_user(sb), _email()
    link = _link(sb, type=kind, email=user.email, new_email=new_email)
    props = link.properties
    hashed_address = user.email if kind == "email_change_current" else new_email
    assert props.hashed_token == hashlib.sha224((hashed_address + props.email_otp).encode()).hexdigest()
    assert link.user.new_email == new_email
    assert _query(props.action_link)["type"] == "email_change"
    columns = _token_columns(sb, user.id)
    stored = columns["change_current"] if kind == "email_change_current" else columns["change_new"]
    assert (columns["email_change"], stored) == (new_email, props.hashed_token)
    taken = _refused(sb, type=kind, email=user.email, new_email=_confirmed_user(sb).email)
    assert (taken.status, taken.code) == (422, "email_exists")


def test_redirect_to_is_kept_only_for_an_allowed_url(sb: Any) -> None:
    user = _confirmed_user(sb)
    allowed = _link(sb, type="recovery", email=user.email, options={"redirect_to": "http://127.0.0.1:3000/welcome"})
    assert allowed.properties.redirect_to == "http://127.0.0.1:3000/welcome"
    assert _query(allowed.properties.action_link)["redirect_to"] == "http://127.0.0.1:3000/welcome"
    elsewhere = _link(sb, type="recovery", email=user.email, options={"redirect_to": "https://evil.example/x"})
    assert elsewhere.properties.redirect_to != "https://evil.example/x"


def test_generate_link_refusals(sb: Any) -> None:
    confirmed = _confirmed_user(sb)
    for kind in ("signup", "invite"):
        exists = _refused(sb, type=kind, email=confirmed.email, password=PASSWORD)
        assert (exists.status, exists.code) == (422, "email_exists")
    wrong_type = _refused(sb, type="login", email=confirmed.email)
    assert (wrong_type.status, wrong_type.code) == (400, "validation_failed")
    assert wrong_type.message == "Invalid email action link type requested: login"
    no_password = _refused(sb, type="signup", email=_email())
    assert (no_password.status, no_password.message) == (400, "Signup requires a valid password")
    bad_email = _refused(sb, type="signup", email="not-an-email", password=PASSWORD)
    assert (bad_email.status, bad_email.code) == (400, "validation_failed")
    anon = _refused(sb, sb.anon, type="recovery", email=confirmed.email)
    assert (anon.status, anon.code) == (403, "not_admin")
