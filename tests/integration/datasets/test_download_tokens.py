"""lp.tokens: single use, stored only as a hash, distinct typed errors, exactly one winner of a race."""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from lora_pipeline import (
    AsyncLoraPipeline,
    ConfigError,
    LoraPipeline,
    Role,
    TokenAlreadyUsed,
    TokenExpired,
    TokenNotFound,
    TokenRevoked,
)
from lora_pipeline.server import create_dataset_download_app


@pytest.fixture
def owned(user_factory: Any, small_dataset: Path) -> tuple[Any, LoraPipeline, Any]:
    user, lp = user_factory()
    return user, lp, lp.datasets.upload(small_dataset, name="shared", progress=None)


def test_the_token_is_stored_only_as_its_hash(local_supabase: Any, owned: Any) -> None:
    _, lp, dataset = owned
    issued = lp.tokens.issue(dataset.id, ttl=timedelta(minutes=30))
    assert len(issued.token) >= 43 and issued.token not in repr(issued)
    with psycopg.connect(local_supabase.db_url) as conn:
        dump = str(conn.execute("select row_to_json(t) from public.dataset_download_tokens t").fetchall())
    assert issued.token not in dump and hashlib.sha256(issued.token.encode()).hexdigest() in dump


def test_anon_redeems_once_and_downloads_exactly_the_file(
    local_supabase: Any, owned: Any, small_dataset: Path, tmp_path: Path
) -> None:
    _, lp, dataset = owned
    issued = lp.tokens.issue(dataset.id)
    anon = local_supabase.client(role=Role.ANON)
    path = anon.tokens.download(issued.token, tmp_path)
    assert path.read_bytes() == small_dataset.read_bytes()
    with pytest.raises(TokenAlreadyUsed):
        anon.tokens.redeem(issued.token)


@pytest.mark.parametrize("state", ["expired", "revoked", "unknown"])
def test_each_dead_token_has_its_own_error(local_supabase: Any, owned: Any, state: str) -> None:
    _, lp, dataset = owned
    issued = lp.tokens.issue(dataset.id)
    if state == "expired":
        with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
            conn.execute("update public.dataset_download_tokens set expires_at = now() - interval '1 second'")
    elif state == "revoked":
        lp.tokens.revoke(issued.id)
    token = issued.token if state != "unknown" else issued.token[::-1]
    expected = {"expired": TokenExpired, "revoked": TokenRevoked, "unknown": TokenNotFound}[state]
    with pytest.raises(expected) as info:
        local_supabase.client(role=Role.ANON).tokens.redeem(token)
    assert dataset.storage_path not in str(info.value)


def test_fifty_concurrent_redeems_have_exactly_one_winner(local_supabase: Any, owned: Any) -> None:
    _, lp, dataset = owned
    issued = lp.tokens.issue(dataset.id)
    clients = [local_supabase.client(role=Role.ANON) for _ in range(50)]

    def redeem(client: LoraPipeline) -> str:
        try:
            client.tokens.redeem(issued.token)
        except TokenAlreadyUsed:
            return "used"
        return "won"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(redeem, clients))
    assert outcomes.count("won") == 1 and outcomes.count("used") == 49


def test_revoke_by_value_and_cleanup_of_expired_tokens(local_supabase: Any, owned: Any) -> None:
    _, lp, dataset = owned
    keep, drop = lp.tokens.issue(dataset.id), lp.tokens.issue(dataset.id)
    lp.tokens.revoke(keep.token)
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
        conn.execute(
            "update public.dataset_download_tokens set expires_at = now() - interval '1 day' where id = %s", (drop.id,)
        )
    assert lp.tokens.cleanup_expired() == 1
    with pytest.raises(TokenRevoked):
        lp.tokens.redeem(keep.token)


def test_user_b_cannot_issue_tokens_for_user_a_dataset(owned: Any, user_factory: Any) -> None:
    from lora_pipeline import NotFound

    _, _, dataset = owned
    _, bob = user_factory()
    with pytest.raises(NotFound):
        bob.tokens.issue(dataset.id)


def test_url_comes_from_the_app_url_setting(local_supabase: Any, owned: Any) -> None:
    user, _, dataset = owned
    lp = LoraPipeline(
        url=local_supabase.url,
        anon_key=local_supabase.anon_key,
        access_token=user.access_token,
        app_url="https://app.example.com",
    )
    issued = lp.tokens.issue(dataset.id)
    assert issued.url == f"https://app.example.com/datasets/download?token={issued.token}"


def test_bad_ttl_and_empty_token_are_config_errors(owned: Any) -> None:
    _, lp, dataset = owned
    with pytest.raises(ConfigError, match="ttl"):
        lp.tokens.issue(dataset.id, ttl=timedelta(0))
    with pytest.raises(ConfigError):
        lp.tokens.redeem("  ")


def test_the_download_app_redirects_once_then_answers_gone(
    local_supabase: Any, owned: Any, small_dataset: Path
) -> None:
    _, lp, dataset = owned
    issued = lp.tokens.issue(dataset.id)

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        client = AsyncLoraPipeline(url=local_supabase.url, anon_key=local_supabase.anon_key, role=Role.ANON)
        app = create_dataset_download_app(client)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
            first = await http.get("/datasets/download", params={"token": issued.token})
            second = await http.get("/datasets/download", params={"token": issued.token})
            missing = await http.get("/datasets/download")
        await client.close()
        return first, second, missing

    first, second, missing = asyncio.run(scenario())
    assert first.status_code == 307
    assert httpx.get(first.headers["location"]).content == small_dataset.read_bytes()
    assert second.status_code == 410 and second.json()["error"] == "LPT03"
    assert missing.status_code == 400
