"""Shared fixtures of the Storage conformance tests (no tests here; the ``test_storage_*.py`` modules import it).

- ``world``: creates ``conf-storage-*`` buckets and ``conf_storage_*`` policies for one test and removes them
  (and their objects) afterwards, so tests never see each other's buckets or policies.
- ``new_user(target)``: a confirmed user and its access token, through /auth/v1 when it works, else (embedded
  stack only) a row in ``auth.users`` plus a token minted with the stack's secret.
- ``raw(target)``: an httpx client on ``/storage/v1`` for what storage3 has no call for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

_auth_api_works: bool | None = None


@dataclass
class StorageWorld:
    """Buckets and policies made for one test."""

    target: Any
    buckets: list[str] = field(default_factory=list)
    policies: list[tuple[str, str]] = field(default_factory=list)

    def bucket(
        self, *, public: bool = False, file_size_limit: int | None = None, allowed_mime_types: list[str] | None = None
    ) -> str:
        bucket_id = f"conf-storage-{uuid.uuid4().hex[:10]}"
        self.target.sql(
            "insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types) "
            "values (%s, %s, %s, %s, %s)",
            (bucket_id, bucket_id, public, file_size_limit, allowed_mime_types),
        )
        self.buckets.append(bucket_id)
        return bucket_id

    def policy(
        self,
        bucket_id: str,
        command: str,
        *,
        roles: str = "authenticated",
        condition: str = "true",
        table: str = "objects",
    ) -> str:
        """A policy on ``storage.<table>`` limited to ``bucket_id`` (``condition`` is extra SQL)."""
        name = f"conf_storage_{uuid.uuid4().hex[:10]}"
        column = "bucket_id" if table == "objects" else "id"
        scope = sql.SQL("{} = {} and ({})").format(sql.Identifier(column), sql.Literal(bucket_id), sql.SQL(condition))
        clause = {
            "select": "using ({scope})",
            "delete": "using ({scope})",
            "insert": "with check ({scope})",
            "update": "using ({scope}) with check ({scope})",
            "all": "using ({scope}) with check ({scope})",
        }
        statement = sql.SQL("create policy {name} on {table} for {command} to {roles} " + clause[command]).format(
            name=sql.Identifier(name),
            table=sql.Identifier("storage", table),
            command=sql.SQL(command),
            roles=sql.SQL(roles),
            scope=scope,
        )
        self.target.sql(statement)
        self.policies.append((name, table))
        return name

    def owner_folder(self, bucket_id: str, *commands: str) -> None:
        """``(storage.foldername(name))[1] = auth.uid()::text`` policies for ``commands``."""
        for command in commands or ("select", "insert", "update", "delete"):
            self.policy(bucket_id, command, condition="(storage.foldername(name))[1] = auth.uid()::text")

    def rows(self, bucket_id: str) -> list[tuple[Any, ...]]:
        return self.target.sql(
            "select name, owner, owner_id, metadata, user_metadata, version from "
            "storage.objects where bucket_id = %s order by name",
            (bucket_id,),
        )

    def cleanup(self) -> None:
        for name, table in self.policies:
            self.target.sql(
                sql.SQL("drop policy if exists {} on {}").format(sql.Identifier(name), sql.Identifier("storage", table))
            )
        if not self.buckets:
            return
        with psycopg.connect(self.target.db_url, autocommit=True) as conn, conn.transaction():
            conn.execute("set local storage.allow_delete_query = 'true'")
            conn.execute("delete from storage.objects where bucket_id = any(%s)", (self.buckets,))
            conn.execute("delete from storage.buckets where id = any(%s)", (self.buckets,))


@pytest.fixture
def world(target: Any) -> Iterator[StorageWorld]:
    made = StorageWorld(target)
    yield made
    made.cleanup()


def new_user(target: Any) -> dict[str, Any]:
    """A session-like dict: ``access_token``, ``user.id``, ``email``."""
    global _auth_api_works
    if _auth_api_works is not False:
        try:
            session = target.create_user()
            _auth_api_works = True
            return session
        except (AssertionError, httpx.HTTPError):
            if not target.is_local:
                raise
            _auth_api_works = False
    return _minted_user(target)


def _minted_user(target: Any) -> dict[str, Any]:
    from lora_pipeline.local_supabase.keys import mint_access_token

    user_id, email = str(uuid.uuid4()), f"conf-storage-{uuid.uuid4().hex[:8]}@example.test"
    target.sql(
        "insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, "
        "raw_user_meta_data, created_at, updated_at) values (%s, 'authenticated', 'authenticated', %s, "
        "now(), '{}', '{}', now(), now())",
        (user_id, email),
    )
    token = mint_access_token(target.stack.jwt_secret, user_id=user_id, email=email)
    return {"access_token": token, "user": {"id": user_id, "email": email}, "email": email}


def uid(session: dict[str, Any]) -> str:
    return str(session["user"]["id"])


def raw(target: Any, token: str | None = None, **headers: str) -> httpx.Client:
    """httpx on ``/storage/v1``; ``token`` becomes ``Authorization: Bearer``."""
    all_headers = dict(headers)
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=f"{target.url}/storage/v1", headers=all_headers, timeout=30)


def error_body(response: httpx.Response) -> dict[str, Any]:
    """Storage's envelope: HTTP 400 (or 5xx), the real status as a string."""
    body = response.json()
    assert set(body) >= {"statusCode", "error", "message"}, body
    assert isinstance(body["statusCode"], str), body
    return dict(body)


__all__ = ["StorageWorld", "error_body", "new_user", "raw", "uid", "world"]
