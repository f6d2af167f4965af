"""Where a pod finds its settings: environment names, the process rank, the default spool directory.

The URL and anon-key names are those of :data:`lora_pipeline.ENV_NAMES` (kept here as plain tuples so that the
pod does not import pydantic; a unit test pins them equal). The service-role key is never read here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .._exceptions import ConfigError
from .._roles import key_postgres_role
from . import launch

POD_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "job_id": (launch.JOB_ID,),
    "job_token": (launch.JOB_TOKEN,),
    "url": ("LORA_PIPELINE_URL", launch.SUPABASE_URL, "NEXT_PUBLIC_SUPABASE_URL"),
    "anon_key": ("LORA_PIPELINE_ANON_KEY", launch.SUPABASE_ANON_KEY, "NEXT_PUBLIC_SUPABASE_ANON_KEY"),
}
"""Every environment variable each pod setting reads, in precedence order."""

SPOOL_DIR_ENV = "LORA_PIPELINE_SPOOL_DIR"
_FIXES = {
    "job_id": "the id of the training job this process reports for",
    "job_token": "the job token issued with the job (lp.jobs.issue_token); never the service-role key",
    "url": "the Supabase project URL",
    "anon_key": "the project's anon (publishable) key; a pod never gets the service-role key",
}


def pod_setting(name: str, given: str | None, env: Mapping[str, str] | None = None) -> str:
    """``given`` when set, else the first non-empty environment variable for ``name``.

    Raises:
        ConfigError: nothing found; the message names the argument and every variable tried.
    """
    if given:
        return given
    environ = os.environ if env is None else env
    names = POD_ENV_NAMES[name]
    for env_name in names:
        value = environ.get(env_name, "").strip()
        if value:
            return value
    raise ConfigError(
        f"missing {name}: pass {name}=... ({_FIXES[name]}) or set one of: {', '.join(names)}",
        argument=name,
        env_names=names,
    )


def check_pod_key(anon_key: str) -> None:
    """Refuse a service-role key where the anon key belongs: a pod must never hold it (DESIGN §3)."""
    if key_postgres_role(anon_key) == "service_role":
        raise ConfigError(
            "the key given as anon_key is a service-role key; a pod gets the anon key plus its job token, "
            "never the service-role key (it bypasses row-level security)",
            argument="anon_key",
            env_names=POD_ENV_NAMES["anon_key"],
        )


def process_rank(env: Mapping[str, str] | None = None) -> int:
    """This process's global rank under torchrun/accelerate/DeepSpeed (``RANK``, else ``LOCAL_RANK``, else 0)."""
    environ = os.environ if env is None else env
    for name in ("RANK", "LOCAL_RANK"):
        value = environ.get(name, "").strip()
        if value:
            try:
                return int(value)
            except ValueError:
                continue
    return 0


def default_spool_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$LORA_PIPELINE_SPOOL_DIR``, else ``$XDG_CACHE_HOME/lora-pipeline/metrics`` (``~/.cache`` by default)."""
    environ = os.environ if env is None else env
    configured = environ.get(SPOOL_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    cache = environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(cache) / "lora-pipeline" / "metrics"


__all__ = ["POD_ENV_NAMES", "SPOOL_DIR_ENV", "check_pod_key", "default_spool_dir", "pod_setting", "process_rank"]
