"""A key passed as an argument settles the role when the other key only comes from the environment."""

from __future__ import annotations

import pytest

from lora_pipeline import Role, Settings
from lora_pipeline._exceptions import ConfigError

BOTH = {
    "SUPABASE_URL": "https://abc.supabase.co",
    "SUPABASE_ANON_KEY": "anon-key-1234",
    "SUPABASE_SERVICE_ROLE_KEY": "service-key-1234",
}


def test_an_explicit_service_key_means_the_service_role() -> None:
    settings = Settings.resolve(env=BOTH, service_role_key="service-key-explicit")
    assert settings.effective_role() is Role.SERVICE


def test_an_explicit_anon_key_means_the_anon_role() -> None:
    assert Settings.resolve(env=BOTH, anon_key="anon-key-explicit").effective_role() is Role.ANON


def test_both_keys_from_the_environment_stay_ambiguous() -> None:
    with pytest.raises(ConfigError, match="both anon_key and service_role_key"):
        Settings.resolve(env=BOTH).effective_role()


def test_both_keys_as_arguments_stay_ambiguous() -> None:
    with pytest.raises(ConfigError, match="no role was chosen"):
        Settings.resolve(
            env={}, url="https://abc.supabase.co", anon_key="anon-1234", service_role_key="svc-12345"
        ).effective_role()


def test_a_role_or_an_access_token_wins_over_settlement() -> None:
    assert Settings.resolve(env={**BOTH, "LORA_PIPELINE_ROLE": "anon"}, service_role_key="svc-12345").role is Role.ANON
    with_token = Settings.resolve(
        env={**BOTH, "LORA_PIPELINE_ACCESS_TOKEN": "token-12345"}, service_role_key="svc-12345"
    )
    assert with_token.role is None and with_token.effective_role() is Role.USER


@pytest.mark.parametrize("suffix", ["/rest/v1", "/rest/v1/", "/storage/v1", "/auth/v1/token"])
def test_a_service_url_is_refused_naming_the_project_url(suffix: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.resolve(env={}, url=f"https://abc.supabase.co{suffix}")
    assert "'https://abc.supabase.co'" in str(raised.value) and "project URL" in str(raised.value)
