"""What ``lp.jobs.deploy`` hands a backend: the checked launch options, the shipped wheel, the pod spec.

Everything a user can get wrong (image, wheel, env, secrets) is checked by :func:`launch_options` before the
job moves at all, so bad input is a typed error, never a pod that fails later. For backends that run a
container image (RunPod), :func:`ship_package` uploads the exact lora-pipeline wheel into the job's own
Storage folder, where only the job token (and the owner) can read it; the pod checks its SHA-256 before pip
sees it (DESIGN §8).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError
from .._ops import Offload, Plan
from .._transfer import upload_file
from ..backends.base import PodBackend, PodPackage, PodSpec, pod_name
from ..pod import launch
from ..types.jobs import JobCredentials, TrainingJob
from ._job_control import event, utcnow

WHEEL_FOLDER = "_launch"
"""Sub-folder of ``lora-models/<user>/<job>/`` holding the wheel the pod installs."""
DEADLINE_MARGIN = timedelta(minutes=10)
TRACKER_CREDENTIALS = ("WANDB_API_KEY", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "HF_TOKEN")
"""Credentials of the ``report_to`` trackers (and the hub): a RunPod pod gets them as secret references,
because a plain env value is stored in the pod's definition, where the RunPod console shows it."""
"""RunPod's ``terminateAfter`` trails the bootstrap's own timeout by this much (image pull, install)."""


@dataclass(frozen=True)
class LaunchOptions:
    """Checked arguments of one deploy."""

    installs_package: bool
    image: str | None = None
    wheel: str | Path | None = None
    requirement: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)


def launch_options(
    backend: PodBackend,
    *,
    image: str | None,
    wheel: str | Path | None,
    requirement: str | None,
    env: Mapping[str, str] | None,
    secrets: Mapping[str, str] | None,
) -> LaunchOptions:
    """Refuse bad launch input before anything happens to the job.

    Raises:
        ConfigError: an image whose tag shows torch < 2.5, both ``wheel`` and ``requirement``, a wheel that is
            not a lora-pipeline wheel, ``secrets`` for a backend that cannot resolve RunPod secrets, or ``env``/
            ``secrets`` naming launcher variables, Supabase service credentials, NUL bytes, service-role keys,
            or a tracker credential (``TRACKER_CREDENTIALS``) given as a plain value to a container backend.
    """
    installs = bool(getattr(backend, "installs_package", False))
    if wheel is not None and requirement is not None:
        raise ConfigError("pass wheel= or requirement=, not both", argument="wheel")
    if requirement is not None and not requirement.strip():
        raise ConfigError(
            "requirement must name a published package, e.g. 'lora-pipeline[train]==0.2.0'", argument="requirement"
        )
    problems = launch.check_user_env(env, secrets)
    if problems:
        raise ConfigError("; ".join(problems), argument="secrets" if any("secrets" in p for p in problems) else "env")
    plain = [name for name in TRACKER_CREDENTIALS if installs and name in (env or {})]
    if plain:
        raise ConfigError(
            f"{', '.join(plain)} would be stored in the pod's definition as a plain value: create a RunPod secret "
            f"and pass secrets={{{plain[0]!r}: '<secret name>'}} instead of env",
            argument="env",
        )
    if secrets and not installs:
        raise ConfigError(
            f"secrets are RunPod secret references, which the {backend.name} backend cannot resolve; "
            "pass the values with env=... for local runs",
            argument="secrets",
        )
    if installs:
        from ..backends.images import check_image

        check_image(image)
        if wheel is not None:
            from ..backends._wheel import prebuilt_wheel

            prebuilt_wheel(wheel)  # checked now; read again when shipped
    return LaunchOptions(installs, image, wheel, requirement, dict(env or {}), dict(secrets or {}))


def refuse_quantization_without_cuda(job: TrainingJob, backend: PodBackend) -> None:
    """QLoRA's bitsandbytes kernels need CUDA: refuse a quantized job on a backend without it, before launch.

    Container backends rent GPU pods; a backend that runs this interpreter (``LocalBackend``) has CUDA only
    when this machine's torch sees a GPU.

    Raises:
        ConfigError: ``hyperparameters.quantization`` is set and the backend has no CUDA (nothing was changed).
    """
    quantization = (job.hyperparameters or {}).get("quantization")
    if not quantization or getattr(backend, "installs_package", False):
        return
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return
    raise ConfigError(
        f"job {job.id} asks for quantization={quantization!r} (QLoRA), which needs a CUDA GPU, and the "
        f"{backend.name} backend has none: deploy it to RunPod, or create the job with quantization=None",
        argument="hyperparameters.quantization",
    )


def ship_package(job: TrainingJob, options: LaunchOptions) -> Plan[PodPackage | None]:
    """Upload the wheel the pod will install (or pass the named requirement); ``None`` for local backends."""
    if not options.installs_package:
        return None
    if options.requirement is not None:
        yield from event(job, "deploy", f"the pod installs the published requirement {options.requirement}")
        return PodPackage(requirement=options.requirement.strip())
    staged: tuple[Path, str, str] = yield Offload(_stage_wheel, (options.wheel,))
    path, file_name, sha256 = staged
    object_name = f"{job.user_id}/{job.id}/{WHEEL_FOLDER}/{file_name}"
    try:
        yield from upload_file(
            path, bucket=launch.MODELS_BUCKET, object_name=object_name, content_type="application/octet-stream"
        )
    finally:
        yield Offload(_remove, (path,))
    yield from event(
        job,
        "deploy",
        f"uploaded {file_name} for the pod to install (sha256 {sha256[:12]}...)",
        data={"wheel": object_name, "sha256": sha256},
    )
    return PodPackage(wheel_object=object_name, wheel_sha256=sha256)


def pod_spec(
    job: TrainingJob, credentials: JobCredentials, options: LaunchOptions, package: PodPackage | None
) -> PodSpec:
    """The spec of this attempt; the backend turns it into env + command (:mod:`lora_pipeline.pod.launch`)."""
    runtime = int(job.max_runtime.total_seconds())
    fields: dict[str, Any] = {
        "job_id": job.id,
        "attempt": job.attempt,
        "name": pod_name(job.id, job.attempt),
        "gpu_type": job.gpu_type,
        "env": credentials.env(),
        "user_env": dict(options.env),
        "secrets": dict(options.secrets),
        "package": package,
        "max_runtime_seconds": runtime,
        "terminate_after": utcnow() + timedelta(seconds=runtime) + DEADLINE_MARGIN,
    }
    if options.image:
        fields["image"] = options.image
    return PodSpec(**fields)


def _stage_wheel(wheel: str | Path | None) -> tuple[Path, str, str]:
    from ..backends._wheel import prebuilt_wheel, running_wheel

    built = prebuilt_wheel(wheel) if wheel is not None else running_wheel()
    folder = Path(tempfile.mkdtemp(prefix="lora-wheel-"))
    path = folder / built.file_name
    path.write_bytes(built.content)
    return path, built.file_name, built.sha256


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()


__all__ = ["DEADLINE_MARGIN", "WHEEL_FOLDER", "LaunchOptions", "launch_options", "pod_spec", "ship_package"]
