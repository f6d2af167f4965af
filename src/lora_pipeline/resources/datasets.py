"""``lp.datasets``: validate, upload, list, download and delete training datasets.

Upload invariants (issue #4): an invalid file uploads nothing; a file over the bucket's 500 MB limit is refused
before any byte moves; the row is written first with status ``uploading`` (holding the resumable upload's URL),
the object second, and the row is marked ``ready`` last. So a ``ready`` row always has its object; a failure
that cannot resume removes the row (and the object when the final write fails); an interrupted large upload
keeps its ``uploading`` row and running the same upload again resumes where it stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError, DatasetValidationError, LoraPipelineError, PayloadTooLarge
from .._ops import Offload, Op, Plan
from .._paths import download_target
from .._progress import ProgressArg
from .._resource import SyncAPIResource
from .._transfer import UploadInterrupted, download_file, upload_file
from ..datasets import DatasetReport, validate_file
from ..datasets._tokens import Tokenizer
from ..types.datasets import Dataset, DatasetStatus
from ._common import one, require_id, rows, safe_file_name, table
from ._natural_keys import dataset_named, jobs_holding

BUCKET = "lora-datasets"
BUCKET_LIMIT = 500 * 1024 * 1024
_CONTENT_TYPES = {
    ".jsonl": "application/jsonl",
    ".ndjson": "application/jsonl",
    ".json": "application/json",
    ".txt": "text/plain",
}


def content_type_for(path: Path, report: DatasetReport) -> str:
    if path.suffix.lower() in _CONTENT_TYPES:
        return _CONTENT_TYPES[path.suffix.lower()]
    return "application/json" if report.container == "json_array" else "application/jsonl"


class _DatasetPlans:
    _core: Any

    def _plan_validate(
        self, path: str | Path, fmt: str, max_seq_len: int | None, tokenizer: Tokenizer | None
    ) -> Plan[DatasetReport]:
        report: DatasetReport = yield Offload(
            validate_file, (Path(path),), {"format": fmt, "max_seq_len": max_seq_len, "tokenizer": tokenizer}
        )
        return report

    def _plan_upload(
        self,
        path: str | Path,
        name: str,
        description: str | None,
        fmt: str,
        user_id: str | None,
        max_seq_len: int | None,
        progress: ProgressArg,
    ) -> Plan[Dataset]:
        path = _existing_file(path)
        owner = self._core.user_id_for(user_id)
        size = path.stat().st_size
        if size > BUCKET_LIMIT:
            raise PayloadTooLarge(
                f"{path.name} is {size / 1e6:.0f} MB, over the {BUCKET} bucket's 500 MB limit; "
                "split the file or sample it down",
                status=413,
                resource=f"{BUCKET}/{path.name}",
            )
        report = yield from self._plan_validate(path, fmt, max_seq_len, None)
        if not report.valid:
            raise DatasetValidationError(f"{path.name} is not a valid dataset: {report.summary()}", report=report)
        uploaded = yield from dataset_named(owner, name, report.sha256)  # the same file again: that dataset
        if uploaded is not None:
            return uploaded
        pending = yield from self._find_resumable(owner, name, report.sha256)
        dataset_id, object_name, resume_url = pending or (None, None, None)
        if dataset_id is None:
            dataset_id = str(uuid.uuid4())
            object_name = f"{owner}/{dataset_id}/{safe_file_name(path)}"
            yield table(
                "datasets",
                lambda t: t.insert(
                    _new_row(dataset_id, owner, name, description, object_name, path, report), returning="minimal"
                ),
                what="insert datasets",
                idempotent=False,
            )
        yield from self._upload_object(dataset_id, path, str(object_name), report, resume_url, progress)
        return (yield from self._mark_ready(dataset_id, str(object_name)))

    def _find_resumable(self, owner: str, name: str, sha256: str) -> Generator[Op, Any, tuple[str, str, str] | None]:
        """An interrupted upload of the same file under the same name, to resume instead of restarting."""
        result = yield table(
            "datasets",
            lambda t: (
                t.select("id, storage_path, upload_url")
                .eq("user_id", owner)
                .eq("name", name)
                .eq("sha256", sha256)
                .eq("status", "uploading")
                .limit(1)
            ),
        )
        found = rows(result)
        if found and found[0].get("upload_url"):
            return found[0]["id"], found[0]["storage_path"], found[0]["upload_url"]
        return None

    def _upload_object(
        self,
        dataset_id: str,
        path: Path,
        object_name: str,
        report: DatasetReport,
        resume_url: str | None,
        progress: ProgressArg,
    ) -> Plan[None]:
        def remember(url: str) -> Plan[None]:
            yield table("datasets", lambda t: t.update({"upload_url": url}, returning="minimal").eq("id", dataset_id))

        try:
            yield from upload_file(
                path,
                bucket=BUCKET,
                object_name=object_name,
                content_type=content_type_for(path, report),
                resume_url=resume_url,
                on_upload_url=remember,
                progress=progress,
            )
        except UploadInterrupted:
            raise
        except LoraPipelineError:
            yield from _forget_row(dataset_id)
            raise

    def _mark_ready(self, dataset_id: str, object_name: str) -> Plan[Dataset]:
        try:
            result = yield table(
                "datasets",
                lambda t: t.update({"status": DatasetStatus.READY.value, "upload_url": None}).eq("id", dataset_id),
                what="update datasets",
            )
            return Dataset.model_validate(one(result, "dataset", dataset_id))
        except LoraPipelineError:
            yield from _remove_object(object_name)
            yield from _forget_row(dataset_id)
            raise

    def _plan_retrieve(self, dataset_id: str) -> Plan[Dataset]:
        dataset_id = require_id(dataset_id, "dataset_id")
        result = yield table("datasets", lambda t: t.select("*").eq("id", dataset_id))
        return Dataset.model_validate(one(result, "dataset", dataset_id))

    def _plan_list(self, status: str | None, user_id: str | None, limit: int) -> Plan[list[Dataset]]:
        def build(t: Any) -> Any:
            query = t.select("*").order("created_at", desc=True).limit(limit)
            query = query.eq("status", str(status)) if status else query
            return query.eq("user_id", require_id(user_id, "user_id")) if user_id else query

        result = yield table("datasets", build)
        return [Dataset.model_validate(row) for row in rows(result)]

    def _plan_delete(self, dataset_id: str) -> Plan[None]:
        dataset = yield from self._plan_retrieve(dataset_id)
        yield from jobs_holding(dataset.id)
        yield table(
            "datasets",
            lambda t: t.delete(returning="minimal").eq("id", dataset.id),
            what=f"delete dataset {dataset.id}",
        )
        if dataset.storage_path:
            yield from _remove_object(dataset.storage_path)

    def _plan_download(self, dataset_id: str, dest: str | Path, progress: ProgressArg) -> Plan[Path]:
        dataset = yield from self._plan_retrieve(dataset_id)
        if dataset.status is not DatasetStatus.READY or not dataset.storage_path:
            raise ConfigError(f"dataset {dataset.id} is {dataset.status}, not ready: nothing to download")
        target = download_target(dest, dataset.file_name, f"{dataset.id}.jsonl", what=f"dataset {dataset.id}")
        return (
            yield from download_file(
                dataset.storage_bucket,
                dataset.storage_path,
                target,
                expected_sha256=dataset.sha256,
                progress=progress,
                total=dataset.size_bytes,
            )
        )


def _existing_file(path: str | Path) -> Path:
    candidate = Path(path)
    if "\x00" in str(path) or not candidate.is_file():
        raise ConfigError(f"{str(path)!r} is not a readable file", argument="path")
    return candidate


def _new_row(
    dataset_id: str, owner: str, name: str, description: str | None, object_name: str, path: Path, report: DatasetReport
) -> dict[str, Any]:
    if not name or not name.strip():
        raise ConfigError("name must be a non-empty string", argument="name")
    return {
        "id": dataset_id,
        "user_id": owner,
        "name": name.strip(),
        "description": description,
        "format": report.format.value if report.format else None,
        "storage_bucket": BUCKET,
        "storage_path": object_name,
        "file_name": path.name,
        "size_bytes": report.size_bytes,
        "sha256": report.sha256,
        "num_examples": report.num_examples,
        "token_stats": report.tokens.model_dump(mode="json"),
        "status": DatasetStatus.UPLOADING.value,
        "validation_report": report.model_dump(mode="json", exclude={"findings"})
        | {"findings": [f.model_dump(mode="json") for f in report.findings[:50]]},
    }


def _forget_row(dataset_id: str) -> Plan[None]:
    try:
        yield table("datasets", lambda t: t.delete(returning="minimal").eq("id", dataset_id), what="delete datasets")
    except LoraPipelineError:
        return


def _remove_object(object_name: str) -> Plan[None]:
    from .._ops import Call

    try:
        yield Call(fn=lambda client: client.storage.from_(BUCKET).remove([object_name]), what=f"{BUCKET}/{object_name}")
    except LoraPipelineError:
        return


class Datasets(SyncAPIResource, _DatasetPlans):
    """Validate, upload, list, download and delete datasets (``lp.datasets``)."""

    def validate(
        self,
        path: str | Path,
        *,
        format: str = "auto",
        max_seq_len: int | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> DatasetReport:
        """Validate a JSONL / JSON-array file locally (nothing is uploaded); see :func:`validate_file`.

        Example::

            report = lp.datasets.validate("train.jsonl", max_seq_len=2048)
            report.raise_for_errors()
        """
        return self._run(self._plan_validate(path, format, max_seq_len, tokenizer))

    def upload(
        self,
        path: str | Path,
        *,
        name: str,
        description: str | None = None,
        format: str = "auto",
        user_id: str | None = None,
        max_seq_len: int | None = None,
        progress: ProgressArg = True,
    ) -> Dataset:
        """Validate, then store the file under ``lora-datasets/<user_id>/<dataset_id>/`` and record it.

        Args:
            path: a JSONL or JSON-array file (at most 500 MB).
            name: a label for the dataset.
            user_id: the owner, only with the service role (a signed-in user always uploads for itself).
            progress: a progress bar (True), a callback ``fn(done, total)``, or None.

        Raises:
            DatasetValidationError: the file has errors (``.report`` lists them); nothing was uploaded.
            PayloadTooLarge: the file is over the bucket's limit; nothing was uploaded.
            UploadInterrupted: a large upload stopped part-way; call ``upload`` again to resume.
        """
        return self._run(self._plan_upload(path, name, description, format, user_id, max_seq_len, progress))

    def retrieve(self, dataset_id: str) -> Dataset:
        """One dataset by id (NotFound when it does not exist or belongs to another user)."""
        return self._run(self._plan_retrieve(dataset_id))

    def list(self, *, status: str | None = None, user_id: str | None = None, limit: int = 100) -> list[Dataset]:
        """Datasets visible to this client, newest first."""
        return self._run(self._plan_list(status, user_id, limit))

    def delete(self, dataset_id: str) -> None:
        """Delete the row and its object (Conflict while training jobs still use the dataset)."""
        return self._run(self._plan_delete(dataset_id))

    def download(self, dataset_id: str, dest: str | Path, *, progress: ProgressArg = True) -> Path:
        """Download the file to ``dest`` (a file path or a folder), checking its SHA-256."""
        return self._run(self._plan_download(dataset_id, dest, progress))


__all__ = ["BUCKET", "BUCKET_LIMIT", "Datasets"]
