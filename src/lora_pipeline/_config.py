"""Settings: where the URL, keys and options come from, and the errors that say how to fix them.

Resolution, first match wins, per setting (DESIGN §3):

1. an explicit argument (``LoraPipeline(url=...)``, ``Settings.resolve(url=...)``);
2. ``LORA_PIPELINE_<NAME>``;
3. the names deployments already use (``SUPABASE_URL``, ``NEXT_PUBLIC_SUPABASE_URL``, ...).

:data:`ENV_NAMES` is the complete table; the README's configuration reference is generated from it.
Secrets are :class:`pydantic.SecretStr` and never appear in ``repr`` or messages.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, SecretStr

from ._exceptions import ConfigError
from ._logging import get_logger, register_secret
from ._roles import Role, key_postgres_role, parse_role

log = get_logger("config")

ENV_NAMES: dict[str, tuple[str, ...]] = {
    "url": ("LORA_PIPELINE_URL", "SUPABASE_URL", "NEXT_PUBLIC_SUPABASE_URL"),
    "anon_key": ("LORA_PIPELINE_ANON_KEY", "SUPABASE_ANON_KEY", "NEXT_PUBLIC_SUPABASE_ANON_KEY"),
    "service_role_key": (
        "LORA_PIPELINE_SERVICE_ROLE_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_SERVICE_KEY",
    ),
    "access_token": ("LORA_PIPELINE_ACCESS_TOKEN",),
    "role": ("LORA_PIPELINE_ROLE",),
    "runpod_api_key": ("LORA_PIPELINE_RUNPOD_API_KEY", "RUNPOD_API_KEY"),
    "app_url": ("LORA_PIPELINE_APP_URL", "NEXT_PUBLIC_APP_URL"),
    "environment": ("LORA_PIPELINE_ENV",),
    "timeout": ("LORA_PIPELINE_TIMEOUT",),
    "max_retries": ("LORA_PIPELINE_MAX_RETRIES",),
}
"""Every environment variable each setting reads, in precedence order."""

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2
_SECRETS = ("anon_key", "service_role_key", "access_token", "runpod_api_key")
_SERVICE_PATH = re.compile(r"/(?:rest|storage|auth|realtime|functions)/v1(?:/.*)?$")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1"}  # noqa: S104 - names, not binds


class Settings(BaseModel):
    """Resolved configuration. Build it with :meth:`resolve` (arguments, then environment)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str | None = None
    """Supabase project URL, e.g. ``https://abc.supabase.co`` or the local stack's URL."""
    anon_key: SecretStr | None = None
    """The anon (publishable) key."""
    service_role_key: SecretStr | None = None
    """The service-role key. Server-side only; never sent to pods."""
    access_token: SecretStr | None = None
    """A signed-in user's access token (role ``USER``)."""
    role: Role | None = None
    """The key role, when chosen explicitly."""
    runpod_api_key: SecretStr | None = None
    """RunPod API key, for the RunPod backend."""
    app_url: str | None = None
    """Public URL of the app serving dataset downloads (pods must be able to reach it)."""
    environment: str = "development"
    """``development`` or ``production``; production warns about localhost URLs."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds to wait for each HTTP response."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """Retries for idempotent requests on transient failures (0 disables)."""

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Resolve every setting from ``explicit`` arguments first, then the environment.

        Raises:
            ConfigError: a value is malformed, or a key is clearly of the wrong role.
        """
        environ = os.environ if env is None else env
        values: dict[str, Any] = {}
        given_names: set[str] = set()
        for name, env_names in ENV_NAMES.items():
            given = explicit.pop(name, None)
            if given is not None:
                values[name] = given
                given_names.add(name)
                continue
            for env_name in env_names:
                raw = environ.get(env_name, "").strip()
                if raw:
                    values[name] = raw
                    break
        if explicit:
            unknown = ", ".join(sorted(explicit))
            raise ConfigError(f"unknown setting(s): {unknown}; valid settings are {', '.join(ENV_NAMES)}")
        settled = _role_settled_by_argument(values, given_names)
        if settled is not None:
            values["role"] = settled
        return cls(**_validated(values))

    def require_url(self) -> str:
        """The project URL, or a :class:`ConfigError` saying how to provide it."""
        if not self.url:
            raise missing("url", "https://<project>.supabase.co (or `lora-pipeline dev env` for the local stack)")
        return self.url

    def require_secret(self, name: str) -> str:
        """The plain value of a secret setting, or a :class:`ConfigError` saying how to provide it."""
        value = getattr(self, name)
        if value is None:
            raise missing(name, "the value from your Supabase project's API settings")
        return str(value.get_secret_value())

    def effective_role(self) -> Role:
        """The role requests run as: explicit, else implied by which credentials are present.

        Raises:
            ConfigError: no credential, or both project keys without an explicit role.
        """
        if self.role is not None:
            self._check_role_credentials(self.role)
            return self.role
        if self.access_token is not None:
            self._check_role_credentials(Role.USER)
            return Role.USER
        if self.service_role_key is not None and self.anon_key is None:
            return Role.SERVICE
        if self.anon_key is not None and self.service_role_key is None:
            return Role.ANON
        if self.anon_key is not None and self.service_role_key is not None:
            raise ConfigError(
                "both anon_key and service_role_key are set and no role was chosen: pass role=Role.SERVICE "
                "(server-side code) or role=Role.ANON, or set LORA_PIPELINE_ROLE=service|anon",
                argument="role",
                env_names=ENV_NAMES["role"],
            )
        raise missing("anon_key", "a project key (or service_role_key for server-side code)")

    def _check_role_credentials(self, role: Role) -> None:
        needs = {Role.SERVICE: ("service_role_key",), Role.ANON: ("anon_key",), Role.USER: ("anon_key", "access_token")}
        for name in needs[role]:
            if getattr(self, name) is None:
                hint = "a signed-in user's access token" if name == "access_token" else "the project's key"
                raise missing(name, hint, role=role)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.__dict__.items() if v is not None}
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def _role_settled_by_argument(values: dict[str, Any], given: set[str]) -> Role | None:
    """The role a key passed as an argument settles when the other key only came from the environment.

    ``LoraPipeline(service_role_key=...)`` in a shell whose ``.env`` also holds the anon key means the service
    role; nothing is settled when a role or an access token is present, or when both keys (or neither) were given.
    """
    if "role" in values or "access_token" in values:
        return None
    keys = {"anon_key", "service_role_key"}
    if not keys <= set(values) or len(keys & given) != 1:
        return None
    return Role.SERVICE if "service_role_key" in given else Role.ANON


def missing(name: str, expected: str, *, role: Role | None = None) -> ConfigError:
    """A :class:`ConfigError` for a missing setting, naming the argument, every env var tried and the fix."""
    env_names = ENV_NAMES.get(name, ())
    tried = ", ".join(env_names) if env_names else "no environment variable"
    why = f" (role {role.value} needs it)" if role else ""
    return ConfigError(
        f"missing {name}{why}: pass {name}=... ({expected}) or set one of: {tried}",
        argument=name,
        env_names=env_names,
    )


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    if "url" in values:
        values["url"] = _check_url("url", str(values["url"]))
    if "app_url" in values:
        values["app_url"] = _check_url("app_url", str(values["app_url"]))
    for name in _SECRETS:
        if name in values:
            raw = values[name].get_secret_value() if isinstance(values[name], SecretStr) else str(values[name])
            register_secret(raw)
            values[name] = SecretStr(raw)
    _check_key_role("anon_key", values.get("anon_key"), expected="anon")
    _check_key_role("service_role_key", values.get("service_role_key"), expected="service_role")
    if "role" in values:
        role = parse_role(values["role"])
        if role is None:
            raise ConfigError(
                f"unknown role {values['role']!r}: use one of service, anon, user (Role.SERVICE, Role.ANON, Role.USER)",
                argument="role",
                env_names=ENV_NAMES["role"],
            )
        values["role"] = role
    for name, kind in (("timeout", float), ("max_retries", int)):
        if name in values:
            values[name] = _number(name, values[name], kind)
    if "environment" in values:
        values["environment"] = str(values["environment"]).strip().lower()
    _warn_localhost_in_production(values)
    return values


def _check_url(name: str, url: str) -> str:
    url = url.strip().rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or re.search(r"\s", url):
        env_names = ENV_NAMES[name]
        raise ConfigError(
            f"{name} {url!r} is not an http(s) URL: pass {name}='https://<host>' or fix {' / '.join(env_names)}",
            argument=name,
            env_names=env_names,
        )
    service_path = _SERVICE_PATH.search(parsed.path) if name == "url" else None
    if service_path:
        base = url[: url.rfind(service_path.group(0))]
        raise ConfigError(
            f"url {url!r} points at one Supabase service ({service_path.group(0)}); lora-pipeline needs the project "
            f"URL, e.g. {base!r} (https://<project-ref>.supabase.co, or the URL `lora-pipeline dev env` prints): "
            f"fix {' / '.join(ENV_NAMES[name])} or the url= argument",
            argument=name,
            env_names=ENV_NAMES[name],
        )
    return url


def _check_key_role(name: str, key: SecretStr | None, *, expected: str) -> None:
    if key is None:
        return
    actual = key_postgres_role(key.get_secret_value())
    if actual is not None and actual != expected:
        swap = "service_role_key" if actual == "service_role" else "anon_key"
        raise ConfigError(
            f"the value given as {name} is a {actual} key, not a {expected} key: pass it as {swap} instead "
            f"(env: {' / '.join(ENV_NAMES[swap])}) and give the project's {expected} key as {name}",
            argument=name,
            env_names=ENV_NAMES[name],
        )


def _number(name: str, value: Any, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be a {kind.__name__}, got {value!r}: fix the argument or {ENV_NAMES[name][0]}",
            argument=name,
            env_names=ENV_NAMES[name],
        ) from None
    if number < 0 or (name == "timeout" and number == 0):
        raise ConfigError(f"{name} must be positive, got {value!r}", argument=name, env_names=ENV_NAMES[name])
    return number


def _warn_localhost_in_production(values: dict[str, Any]) -> None:
    app_url = values.get("app_url")
    if values.get("environment") != "production" or not app_url:
        return
    host = urlparse(app_url).hostname or ""
    if host in _LOCAL_HOSTS:
        message = (
            f"app_url {app_url!r} points at {host} while LORA_PIPELINE_ENV=production: pods and other machines "
            "cannot reach it; set NEXT_PUBLIC_APP_URL / LORA_PIPELINE_APP_URL to the public URL"
        )
        log.warning(message)
        warnings.warn(message, UserWarning, stacklevel=4)


__all__ = ["DEFAULT_MAX_RETRIES", "DEFAULT_TIMEOUT", "ENV_NAMES", "Settings", "missing"]
