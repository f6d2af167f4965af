"""``lp.tokens``: single-use, short-lived dataset download tokens (the seeds' ``dataset_download_tokens``).

``issue`` draws 32 random bytes and stores only their SHA-256. ``redeem`` consumes the token in one SQL
statement (of N concurrent redeems exactly one wins) and receives a two-minute download grant, which Storage
policies accept in the ``x-lora-download-grant`` header; with it any key, the anon key included, signs a
short-lived URL for exactly that object. Expired, used, unknown and revoked tokens raise their own errors.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._exceptions import ConfigError, NotFound
from .._logging import register_secret
from .._ops import Http, HttpResult, Offload, Plan
from .._paths import download_target
from .._resource import SyncAPIResource
from ..types.datasets import DatasetDownload, IssuedToken
from ._common import encode_path, one, require_id, rows, rpc, sha256_file, table

SIGNED_URL_SECONDS = 300
MAX_TTL = timedelta(days=7)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class _TokenPlans:
    _core: Any

    def _plan_issue(self, dataset_id: str, ttl: timedelta) -> Plan[IssuedToken]:
        dataset_id = require_id(dataset_id, "dataset_id")
        if not timedelta(0) < ttl <= MAX_TTL:
            raise ConfigError(f"ttl must be positive and at most {MAX_TTL.days} days, got {ttl}", argument="ttl")
        found = yield table("datasets", lambda t: t.select("id, user_id, status").eq("id", dataset_id))
        dataset = one(found, "dataset", dataset_id)
        token = secrets.token_urlsafe(32)
        register_secret(token)
        expires_at = datetime.now(timezone.utc) + ttl
        row = {
            "id": str(uuid.uuid4()),
            "user_id": dataset["user_id"],
            "dataset_id": dataset_id,
            "token_hash": hash_token(token),
            "expires_at": expires_at.isoformat(),
        }
        yield table("dataset_download_tokens", lambda t: t.insert(row, returning="minimal"), idempotent=False)
        app_url = self._core.settings.app_url
        url = f"{app_url}/datasets/download?token={quote(token)}" if app_url else None
        return IssuedToken(id=row["id"], dataset_id=dataset_id, token=token, expires_at=expires_at, url=url)

    def _plan_redeem(self, token: str) -> Plan[DatasetDownload]:
        if not isinstance(token, str) or not token.strip():
            raise ConfigError("token must be the non-empty string issue() returned", argument="token")
        register_secret(token)
        result = yield rpc("redeem_download_token", {"token": token.strip()}, idempotent=False)
        info = result.data if isinstance(result.data, dict) else {}
        register_secret(info.get("grant"))
        lifetime = _signed_url_seconds(info.get("token_expires_at"))
        signed: HttpResult = yield Http(
            "POST",
            f"/storage/v1/object/sign/{info['bucket']}/{encode_path(info['path'])}",
            what="sign download",
            service="storage",
            json={"expiresIn": lifetime},
            headers={"x-lora-download-grant": info["grant"]},
        )
        signed_url = f"{self._core.url}/storage/v1{signed.json()['signedURL']}"
        expires_at = datetime.now(timezone.utc) + timedelta(seconds=lifetime)
        return DatasetDownload(
            dataset_id=info["dataset_id"],
            name=info["name"],
            format=info.get("format"),
            file_name=info.get("file_name"),
            size_bytes=info.get("size_bytes"),
            sha256=info.get("sha256"),
            num_examples=info.get("num_examples"),
            signed_url=signed_url,
            expires_at=expires_at,
        )

    def _plan_download(self, token: str, dest: str | Path) -> Plan[Path]:
        from .._exceptions import ArtifactIntegrityError

        download = yield from self._plan_redeem(token)
        target = download_target(
            dest, download.file_name, f"{download.dataset_id}.jsonl", what=f"dataset {download.dataset_id}"
        )
        yield Http(
            "GET",
            download.signed_url,
            what=f"dataset {download.dataset_id}",
            service="storage",
            authenticate=False,
            dest=target,
        )
        actual = yield Offload(sha256_file, (target,))
        if download.sha256 and actual != download.sha256:
            target.unlink(missing_ok=True)
            raise ArtifactIntegrityError(f"dataset {download.dataset_id}: downloaded bytes do not match its SHA-256")
        return target

    def _plan_revoke(self, token_or_id: str) -> Plan[None]:
        try:
            column, value = "id", require_id(token_or_id, "token_or_id")
        except ConfigError:
            column, value = "token_hash", hash_token(token_or_id)
        result = yield table(
            "dataset_download_tokens",
            lambda t: (
                t.update({"revoked_at": datetime.now(timezone.utc).isoformat()})
                .eq(column, value)
                .is_("revoked_at", "null")
            ),
        )
        if not rows(result):
            raise NotFound(
                "no such download token, it was revoked already, or it belongs to another user",
                status=404,
                resource="dataset_download_tokens",
            )

    def _plan_cleanup(self) -> Plan[int]:
        result = yield rpc("cleanup_expired_dataset_tokens", {}, idempotent=False)
        return int(result.data or 0)


def _signed_url_seconds(token_expires_at: str | None) -> int:
    """Five minutes, or less when the token itself expires sooner: a signed URL never outlives its token."""
    if not token_expires_at:
        return SIGNED_URL_SECONDS
    left = (datetime.fromisoformat(token_expires_at) - datetime.now(timezone.utc)).total_seconds()
    return max(1, min(SIGNED_URL_SECONDS, int(left)))


class Tokens(SyncAPIResource, _TokenPlans):
    """Single-use dataset download tokens (``lp.tokens``)."""

    def issue(self, dataset_id: str, *, ttl: timedelta = timedelta(hours=2)) -> IssuedToken:
        """Issue a token for one download of ``dataset_id``; the plain token is returned once and never stored.

        ``IssuedToken.url`` is ``<app url>/datasets/download?token=...`` when an app URL is configured
        (``NEXT_PUBLIC_APP_URL``); serve it with :data:`lora_pipeline.server.dataset_download_app`.
        """
        return self._run(self._plan_issue(dataset_id, ttl))

    def redeem(self, token: str) -> DatasetDownload:
        """Consume the token (exactly once) and get a signed URL valid for five minutes.

        Raises:
            TokenNotFound, TokenExpired, TokenAlreadyUsed, TokenRevoked: the token cannot be redeemed.
        """
        return self._run(self._plan_redeem(token))

    def download(self, token: str, dest: str | Path) -> Path:
        """Redeem the token and download the dataset to ``dest`` (a file or a folder), checking its SHA-256."""
        return self._run(self._plan_download(token, dest))

    def revoke(self, token_or_id: str) -> None:
        """Revoke a token by its id or its value; a revoked token can never be redeemed."""
        return self._run(self._plan_revoke(token_or_id))

    def cleanup_expired(self) -> int:
        """Delete expired tokens (the caller's own, or all with the service role); returns how many."""
        return self._run(self._plan_cleanup())


__all__ = ["Tokens", "hash_token"]
