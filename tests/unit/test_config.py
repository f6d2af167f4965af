"""Settings precedence, aliases, secret handling and the errors that say how to fix configuration."""

from __future__ import annotations

import warnings

import jwt
import pytest

from lora_pipeline import ConfigError, Role, Settings
from lora_pipeline._config import ENV_NAMES

SECRET = "x" * 40
ANON = jwt.encode({"role": "anon", "iss": "supabase"}, SECRET, algorithm="HS256")
SERVICE = jwt.encode({"role": "service_role", "iss": "supabase"}, SECRET, algorithm="HS256")
USER_TOKEN = jwt.encode(
    {"role": "authenticated", "sub": "11111111-1111-1111-1111-111111111111"}, SECRET, algorithm="HS256"
)


def test_explicit_argument_beats_every_environment_name() -> None:
    env = {"LORA_PIPELINE_URL": "https://env.example", "SUPABASE_URL": "https://alias.example"}
    assert Settings.resolve(env=env, url="https://arg.example").url == "https://arg.example"


def test_lora_pipeline_names_beat_the_aliases() -> None:
    env = {"LORA_PIPELINE_URL": "https://ours.example", "SUPABASE_URL": "https://alias.example"}
    assert Settings.resolve(env=env).url == "https://ours.example"


@pytest.mark.parametrize(
    ("setting", "env_name", "value"),
    [
        ("url", "SUPABASE_URL", "https://a.example"),
        ("url", "NEXT_PUBLIC_SUPABASE_URL", "https://b.example"),
        ("anon_key", "SUPABASE_ANON_KEY", ANON),
        ("anon_key", "NEXT_PUBLIC_SUPABASE_ANON_KEY", ANON),
        ("service_role_key", "SUPABASE_SERVICE_ROLE_KEY", SERVICE),
        ("service_role_key", "SUPABASE_SERVICE_KEY", SERVICE),
        ("runpod_api_key", "RUNPOD_API_KEY", "rp_key_value_123"),
        ("app_url", "NEXT_PUBLIC_APP_URL", "https://app.example"),
    ],
)
def test_every_alias_the_seeds_used_is_read(setting: str, env_name: str, value: str) -> None:
    settings = Settings.resolve(env={env_name: value})
    resolved = getattr(settings, setting)
    assert (resolved.get_secret_value() if hasattr(resolved, "get_secret_value") else resolved) == value
    assert env_name in ENV_NAMES[setting]


def test_secrets_never_appear_in_repr_or_str() -> None:
    settings = Settings.resolve(
        env={},
        url="https://a.example",
        anon_key=ANON,
        service_role_key=SERVICE,
        access_token=USER_TOKEN,
        runpod_api_key="rp_secret_key_value",
    )
    text = repr(settings) + str(settings) + str(settings.model_dump())
    for secret in (ANON, SERVICE, USER_TOKEN, "rp_secret_key_value"):
        assert secret not in text


def test_missing_url_error_names_argument_every_env_name_and_fix() -> None:
    settings = Settings.resolve(env={}, anon_key=ANON)
    with pytest.raises(ConfigError) as info:
        settings.require_url()
    message = str(info.value)
    assert "url" in message and "pass url=" in message
    for name in ENV_NAMES["url"]:
        assert name in message
    assert info.value.argument == "url"


def test_malformed_url_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="is not an http\\(s\\) URL"):
        Settings.resolve(env={}, url="supabase.co/project")


def test_a_service_key_passed_as_the_anon_key_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.resolve(env={}, url="https://a.example", anon_key=SERVICE)
    assert "service_role key" in str(info.value) and "service_role_key" in str(info.value)
    assert SERVICE not in str(info.value)


def test_an_anon_key_passed_as_the_service_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="is a anon key, not a service_role key"):
        Settings.resolve(env={"SUPABASE_SERVICE_ROLE_KEY": ANON}, url="https://a.example")


def test_opaque_secret_key_as_anon_key_is_refused() -> None:
    with pytest.raises(ConfigError):
        Settings.resolve(env={}, anon_key="sb_secret_abcdefghijklmnop")


def test_unknown_role_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="use one of service, anon, user"):
        Settings.resolve(env={}, role="admin")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("service_role", Role.SERVICE), ("authenticated", Role.USER), ("ANON", Role.ANON), (Role.SERVICE, Role.SERVICE)],
)
def test_role_aliases(given: str, expected: Role) -> None:
    assert Settings.resolve(env={}, role=given).role is expected


def test_role_is_implied_only_when_unambiguous() -> None:
    assert Settings.resolve(env={}, anon_key=ANON).effective_role() is Role.ANON
    assert Settings.resolve(env={}, service_role_key=SERVICE).effective_role() is Role.SERVICE
    assert Settings.resolve(env={}, anon_key=ANON, access_token=USER_TOKEN).effective_role() is Role.USER
    with pytest.raises(ConfigError, match="no role was chosen"):
        Settings.resolve(env={}, anon_key=ANON, service_role_key=SERVICE).effective_role()


def test_no_silent_fallback_from_anon_to_service() -> None:
    settings = Settings.resolve(env={}, service_role_key=SERVICE, role="anon")
    with pytest.raises(ConfigError, match="missing anon_key"):
        settings.effective_role()


def test_user_role_needs_an_access_token() -> None:
    with pytest.raises(ConfigError, match="access_token"):
        Settings.resolve(env={}, anon_key=ANON, role="user").effective_role()


def test_localhost_app_url_in_production_warns() -> None:
    with pytest.warns(UserWarning, match="cannot reach it"):
        Settings.resolve(env={"LORA_PIPELINE_ENV": "production", "NEXT_PUBLIC_APP_URL": "http://localhost:3000"})


def test_localhost_app_url_in_development_is_quiet() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Settings.resolve(env={"NEXT_PUBLIC_APP_URL": "http://localhost:3000"})


@pytest.mark.parametrize(("name", "value"), [("timeout", "soon"), ("timeout", "0"), ("max_retries", "-1")])
def test_numbers_are_validated(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.resolve(env={ENV_NAMES[name][0]: value})


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.resolve(env={}, nonsense=1)
