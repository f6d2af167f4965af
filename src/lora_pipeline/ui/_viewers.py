"""Who a page reads as. The dashboard never decides what a viewer may see: it reads through the SDK with the
viewer's own credentials and row-level security answers.

Two ways in, the CLI's: a client fixed at start (environment or ``--role``: a signed-in user's token, or the
service role, which every page then announces), or, when only the project URL and anon key are known, a sign-in
page whose email and password become a :meth:`LoraPipeline.sign_in` client kept server-side per browser (the
cookie holds a random id, never a token).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._roles import Role

if TYPE_CHECKING:
    from .._client import LoraPipeline

SESSION_COOKIE = "lp_ui_session"


@dataclass(frozen=True)
class Viewer:
    """A client and how pages name it."""

    client: LoraPipeline
    label: str
    """The user's email, or ``service role``."""
    key: str
    """Identifies the viewer in caches (never a secret)."""

    @property
    def is_service(self) -> bool:
        return self.client.role is Role.SERVICE


class Viewers:
    """The fixed viewer, or the signed-in ones by session id."""

    def __init__(self, fixed: LoraPipeline | None = None, *, url: str | None = None, anon_key: str | None = None):
        self._fixed = _viewer(fixed, _fixed_label(fixed)) if fixed is not None else None
        self._url = url
        self._anon_key = anon_key
        self._sessions: dict[str, Viewer] = {}
        self._lock = threading.Lock()

    @property
    def sign_in_enabled(self) -> bool:
        return self._fixed is None

    def for_session(self, session_id: str | None) -> Viewer | None:
        """The viewer of a request: the fixed one, else the session's (``None``: show the sign-in page)."""
        if self._fixed is not None:
            return self._fixed
        with self._lock:
            return self._sessions.get(session_id or "")

    def sign_in(self, email: str, password: str) -> str:
        """Sign the user in and return a new session id.

        Raises:
            AuthenticationError: wrong email or password.
            ConfigError: no project URL or anon key.
        """
        from .._client import LoraPipeline

        client = LoraPipeline.sign_in(email, password, url=self._url, anon_key=self._anon_key)
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = _viewer(client, email)
        return session_id

    def sign_out(self, session_id: str | None) -> Viewer | None:
        with self._lock:
            viewer = self._sessions.pop(session_id or "", None)
        if viewer is not None:
            viewer.client.close()
        return viewer


def _viewer(client: LoraPipeline, label: str) -> Viewer:
    return Viewer(client, label, f"{client.role}:{client.user_id or label}")


def _fixed_label(client: LoraPipeline | None) -> str:
    if client is None or client.role is Role.SERVICE:
        return "service role"
    return f"user {client.user_id}" if client.user_id else str(client.role)
