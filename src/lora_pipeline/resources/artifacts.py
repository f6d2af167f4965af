"""``lp.artifacts``: trained adapters in ``lora-models/<user_id>/<job_id>/``: list, download, sign, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._exceptions import ConfigError, NotFound
from .._ops import Call, Plan
from .._paths import contained_path
from .._progress import ProgressArg
from .._resource import SyncAPIResource
from .._transfer import download_file
from ..types.artifacts import Artifact
from ._common import one, require_id, rows, table


class _ArtifactPlans:
    _core: Any

    def _plan_list(self, job_id: str | None, limit: int) -> Plan[list[Artifact]]:
        def build(t: Any) -> Any:
            query = t.select("*").order("created_at", desc=True).limit(limit)
            return query.eq("job_id", require_id(job_id, "job_id")) if job_id else query

        result = yield table("model_artifacts", build)
        return [Artifact.model_validate(row) for row in rows(result)]

    def _plan_retrieve(self, artifact_id: str) -> Plan[Artifact]:
        artifact_id = require_id(artifact_id, "artifact_id")
        result = yield table("model_artifacts", lambda t: t.select("*").eq("id", artifact_id))
        return Artifact.model_validate(one(result, "artifact", artifact_id))

    def _plan_resolve(self, artifact_or_job_id: str | Artifact) -> Plan[Artifact]:
        """An artifact by its own id, else the newest artifact of a job with that id."""
        if isinstance(artifact_or_job_id, Artifact):
            return artifact_or_job_id
        ident = require_id(artifact_or_job_id, "artifact_or_job_id")
        found = rows((yield table("model_artifacts", lambda t: t.select("*").eq("id", ident))))
        if not found:
            found = rows(
                (
                    yield table(
                        "model_artifacts",
                        lambda t: t.select("*").eq("job_id", ident).order("created_at", desc=True).limit(1),
                    )
                )
            )
        if not found:
            raise NotFound(
                f"no artifact with id {ident} and no artifact of a job {ident}",
                status=404,
                resource=f"artifact {ident}",
            )
        return Artifact.model_validate(found[0])

    def _plan_download(
        self, artifact_or_job_id: str | Artifact, dest_dir: str | Path, progress: ProgressArg
    ) -> Plan[Path]:
        artifact = yield from self._plan_resolve(artifact_or_job_id)
        target = Path(dest_dir)
        target.mkdir(parents=True, exist_ok=True)
        for file in artifact.files:
            destination = contained_path(target, file.name, what=f"artifact {artifact.id}")
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.exists() and destination.stat().st_size == file.size:
                from ._common import sha256_file

                if sha256_file(destination) == file.sha256:
                    continue
            yield from download_file(
                artifact.storage_bucket,
                artifact.storage_path + file.name,
                destination,
                expected_sha256=file.sha256,
                progress=progress,
                total=file.size,
            )
        return target

    def _plan_signed_url(self, artifact_or_job_id: str | Artifact, file: str | None, expires_in: int) -> Plan[str]:
        artifact = yield from self._plan_resolve(artifact_or_job_id)
        name = file or _main_file(artifact)
        if name not in {f.name for f in artifact.files}:
            raise ConfigError(f"{name!r} is not a file of artifact {artifact.id}", argument="file")
        result: Any = yield Call(
            fn=lambda c: c.storage.from_(artifact.storage_bucket).create_signed_url(
                artifact.storage_path + name, expires_in
            ),
            what=f"sign {artifact.storage_path}{name}",
        )
        url = result.get("signedURL") or result.get("signedUrl") if isinstance(result, dict) else str(result)
        return str(url)

    def _plan_delete(self, artifact_id: str) -> Plan[None]:
        artifact = yield from self._plan_retrieve(artifact_id)
        names = [artifact.storage_path + f.name for f in artifact.files]
        yield table(
            "model_artifacts",
            lambda t: t.delete(returning="minimal").eq("id", artifact.id),
            what=f"delete artifact {artifact.id}",
        )
        if names:
            yield Call(
                fn=lambda c: c.storage.from_(artifact.storage_bucket).remove(names),
                what=f"{artifact.storage_bucket}/{artifact.storage_path}",
            )


def _main_file(artifact: Artifact) -> str:
    for file in artifact.files:
        if file.name.endswith(".safetensors"):
            return file.name
    if not artifact.files:
        raise NotFound(f"artifact {artifact.id} has no files", status=404)
    return artifact.files[0].name


class Artifacts(SyncAPIResource, _ArtifactPlans):
    """Trained adapters (``lp.artifacts``)."""

    def list(self, *, job_id: str | None = None, limit: int = 100) -> list[Artifact]:
        """Artifacts visible to this client, newest first, optionally of one job."""
        return self._run(self._plan_list(job_id, limit))

    def retrieve(self, artifact_id: str) -> Artifact:
        return self._run(self._plan_retrieve(artifact_id))

    def download(
        self, artifact_or_job_id: str | Artifact, dest_dir: str | Path, *, progress: ProgressArg = True
    ) -> Path:
        """Download every file into ``dest_dir``, each checked against its recorded SHA-256.

        Interrupted downloads resume (a ``.part`` file continues with a Range request); files already
        present with the right hash are skipped. The folder loads with ``peft.PeftModel.from_pretrained``.
        """
        return self._run(self._plan_download(artifact_or_job_id, dest_dir, progress))

    def signed_url(self, artifact_or_job_id: str | Artifact, *, file: str | None = None, expires_in: int = 3600) -> str:
        """A signed URL for one file (default: the adapter weights) valid for ``expires_in`` seconds."""
        return self._run(self._plan_signed_url(artifact_or_job_id, file, expires_in))

    def delete(self, artifact_id: str) -> None:
        """Delete the artifact row and its files."""
        return self._run(self._plan_delete(artifact_id))


__all__ = ["Artifacts"]
