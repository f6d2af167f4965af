"""What a pod knows about itself: read once from the environment, never the service-role key."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import launch
from ._env import POD_ENV_NAMES, check_pod_key, pod_setting


@dataclass(frozen=True)
class PodEnvironment:
    url: str
    anon_key: str = field(repr=False)
    job_id: str
    job_token: str = field(repr=False)
    work_dir: Path
    pod_id: str | None = None
    backend: str = "runpod"
    runpod_api_key: str | None = field(default=None, repr=False)
    runpod_api_base: str = "https://api.runpod.io"
    trainer: str = "lora"
    heartbeat_seconds: float = 15.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> PodEnvironment:
        """Read the pod's settings (names: ``POD_ENV_NAMES``); a missing one is a ConfigError naming every
        variable tried, a service-role key where the anon key belongs is refused."""
        env = dict(os.environ if environ is None else environ)
        values = {name: pod_setting(name, None, env) for name in POD_ENV_NAMES}
        values["url"] = values["url"].rstrip("/")
        check_pod_key(values["anon_key"])
        backend = env.get(launch.POD_BACKEND) or ("runpod" if env.get(launch.RUNPOD_POD_ID) else "local")
        return cls(
            **values,
            work_dir=Path(env.get(launch.WORK_DIR) or env.get("TMPDIR") or "/tmp") / "lora-pipeline",  # noqa: S108
            pod_id=env.get(launch.RUNPOD_POD_ID) or env.get(launch.POD_ID),
            backend=backend,
            runpod_api_key=env.get(launch.RUNPOD_API_KEY),
            runpod_api_base=(env.get(launch.RUNPOD_API_BASE_URL) or "https://api.runpod.io").rstrip("/"),
            trainer=env.get(launch.TRAINER, "lora"),
            heartbeat_seconds=float(env.get(launch.HEARTBEAT_SECONDS, "15")),
        )

    def storage_headers(self) -> dict[str, str]:
        """Headers the Storage policies read to let this job's token through (DESIGN §3)."""
        return {"x-lora-job-id": self.job_id, "x-lora-job-token": self.job_token}


__all__ = ["PodEnvironment"]
