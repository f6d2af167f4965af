"""What both root clients share: settings, the role, and one supabase client per role.

A supabase-py ``Client`` changes identity when someone signs in on it (research/supabase-stack.md §8 #3). Here
each role gets its own client, built once with a fixed ``Authorization`` header, never signed in and never
mutated, so a service client can never become a user client or the reverse.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx

from ._config import Settings
from ._exceptions import ConfigError
from ._roles import Role, jwt_claims
from ._version import __version__

if TYPE_CHECKING:
    from supabase import AsyncClient, Client

CLIENT_INFO = f"lora-pipeline/{__version__}"


class ClientCore:
    """Settings plus lazily built per-role clients. Shared by :class:`LoraPipeline` and its resources."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.require_url()
        self.role = settings.effective_role()
        self._sync: dict[Role, Client] = {}
        self._async: dict[Role, AsyncClient] = {}
        self._sync_http: httpx.Client | None = None
        self._async_http: httpx.AsyncClient | None = None
        self._lock = threading.Lock()

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    @property
    def max_retries(self) -> int:
        return self.settings.max_retries

    def key_for(self, role: Role) -> str:
        """The project key a role sends as ``apikey``."""
        return self.settings.require_secret("service_role_key" if role is Role.SERVICE else "anon_key")

    def bearer_for(self, role: Role) -> str:
        """The token a role sends as ``Authorization: Bearer``."""
        if role is Role.USER:
            return self.settings.require_secret("access_token")
        return self.key_for(role)

    def auth_headers(self, role: Role | None = None) -> dict[str, str]:
        role = role or self.role
        return {"apikey": self.key_for(role), "Authorization": f"Bearer {self.bearer_for(role)}"}

    def caller_user_id(self) -> str | None:
        """The signed-in user's id (``sub``) for role USER; ``None`` for the other roles.

        Read from the token without verifying it, only to build paths such as ``<user_id>/...``; Postgres
        checks the token on every request and RLS decides access.
        """
        if self.role is not Role.USER:
            return None
        claims = jwt_claims(self.bearer_for(Role.USER)) or {}
        sub = claims.get("sub")
        return sub if isinstance(sub, str) else None

    def user_id_for(self, user_id: str | None) -> str:
        """The user that owns new rows: the caller (USER) or an explicit ``user_id`` (SERVICE)."""
        if self.role is Role.USER:
            own = self.caller_user_id()
            if user_id is not None and user_id != own:
                raise ConfigError("user_id can only be given with the service role; a user acts for itself")
            if own is None:
                raise ConfigError("the access token has no `sub` claim: sign in again to get a user token")
            return own
        if self.role is Role.SERVICE:
            if not user_id:
                raise ConfigError(
                    "the service role acts on behalf of a user: pass user_id='<auth user uuid>'", argument="user_id"
                )
            return user_id
        raise ConfigError(
            "this operation needs a signed-in user (Role.USER) or the service role, not the anon key", argument="role"
        )

    def _options_kwargs(self, role: Role) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.bearer_for(role)}", "X-Client-Info": CLIENT_INFO}
        return {
            "headers": headers,
            "auto_refresh_token": False,
            "persist_session": False,
            "postgrest_client_timeout": self.timeout,
            "postgrest_client_retry": False,
            "storage_client_timeout": max(1, int(self.timeout)),
        }

    def sync_supabase(self, role: Role | None = None) -> Client:
        """The sync supabase client for ``role`` (built on first use)."""
        role = role or self.role
        with self._lock:
            if role not in self._sync:
                from supabase import Client
                from supabase.lib.client_options import SyncClientOptions

                options = SyncClientOptions(**self._options_kwargs(role))
                self._sync[role] = Client(self.url, self.key_for(role), options)
            return self._sync[role]

    def async_supabase(self, role: Role | None = None) -> AsyncClient:
        """The async supabase client for ``role`` (built on first use)."""
        role = role or self.role
        with self._lock:
            if role not in self._async:
                from supabase import AsyncClient
                from supabase.lib.client_options import AsyncClientOptions

                options = AsyncClientOptions(**self._options_kwargs(role))
                self._async[role] = AsyncClient(self.url, self.key_for(role), options)
            return self._async[role]

    def sync_http(self) -> httpx.Client:
        with self._lock:
            if self._sync_http is None:
                self._sync_http = httpx.Client(timeout=self.timeout, headers={"X-Client-Info": CLIENT_INFO})
            return self._sync_http

    def async_http(self) -> httpx.AsyncClient:
        with self._lock:
            if self._async_http is None:
                self._async_http = httpx.AsyncClient(timeout=self.timeout, headers={"X-Client-Info": CLIENT_INFO})
            return self._async_http

    def derive(self, **changes: Any) -> ClientCore:
        """A new core with some settings replaced (``with_options``); nothing is shared or mutated."""
        values = {k: v for k, v in self.settings.__dict__.items() if v is not None}
        values.update({k: v for k, v in changes.items() if v is not None})
        secrets = ("anon_key", "service_role_key", "access_token", "runpod_api_key")
        for name in secrets:
            value = values.get(name)
            if value is not None and hasattr(value, "get_secret_value"):
                values[name] = value.get_secret_value()
        if "access_token" in changes and changes["access_token"] is not None and "role" not in changes:
            values["role"] = Role.USER
        return ClientCore(Settings.resolve(env={}, **values))

    def close(self) -> None:
        if self._sync_http is not None:
            self._sync_http.close()
            self._sync_http = None

    async def aclose(self) -> None:
        if self._async_http is not None:
            await self._async_http.aclose()
            self._async_http = None

    def __repr__(self) -> str:
        return f"ClientCore(url={self.url!r}, role={self.role.value!r})"


__all__ = ["CLIENT_INFO", "ClientCore"]
