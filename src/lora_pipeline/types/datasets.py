"""Datasets and download tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import Field

from .._compat import StrEnum
from ._base import Model


class DatasetStatus(StrEnum):
    """``uploading`` until the object is stored; ``ready`` after; ``failed``/``invalid`` otherwise."""

    UPLOADING = "uploading"
    READY = "ready"
    INVALID = "invalid"
    FAILED = "failed"


class Dataset(Model):
    """A row of ``datasets``: a validated training file in Storage."""

    id: str
    user_id: str
    name: str
    description: str | None = None
    format: str | None = None
    """chat, sharegpt, alpaca, prompt_completion or text."""
    storage_bucket: str = "lora-datasets"
    storage_path: str | None = None
    """Object name inside the bucket: ``<user_id>/<dataset_id>/<file name>``."""
    file_name: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    num_examples: int | None = None
    token_stats: dict[str, Any] | None = None
    status: DatasetStatus
    validation_report: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def ready(self) -> bool:
        return self.status is DatasetStatus.READY

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Short: the validation report and token statistics stay out of the repr (they run to kilobytes).
        for name in ("id", "name", "status", "format", "num_examples", "size_bytes"):
            value = getattr(self, name)
            if value is not None:
                yield name, str(value) if name == "status" else value


class IssuedToken(Model):
    """A single-use download token, shown once. Only its SHA-256 is stored."""

    id: str
    dataset_id: str
    token: str = Field(repr=False)
    """The secret: hand it to whoever should download the dataset once."""
    expires_at: datetime
    url: str | None = Field(default=None, repr=False)
    """``<app url>/datasets/download?token=...`` when an app URL is configured."""


class DatasetDownload(Model):
    """What redeeming a token gives: a short-lived signed URL and the dataset's metadata."""

    dataset_id: str
    name: str
    format: str | None = None
    file_name: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    num_examples: int | None = None
    signed_url: str = Field(repr=False)
    expires_at: datetime


__all__ = ["Dataset", "DatasetDownload", "DatasetStatus", "IssuedToken"]
