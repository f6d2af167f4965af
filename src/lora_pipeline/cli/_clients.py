"""Building clients and backends for commands, from the environment and the global ``--role`` option."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import ConfigError

if TYPE_CHECKING:
    from .._client import LoraPipeline
    from ..backends.base import PodBackend

ROLE_CHOICES = ("service", "user", "anon")


class _Options:
    """What the root command's options chose for this invocation (set once by the root callback)."""

    role: str | None = None


options = _Options()


def client() -> LoraPipeline:
    """A client from the environment (see the README's configuration reference) and ``--role``.

    Raises:
        ConfigError: in shell terms (``--role``, environment variable names), never Python arguments.
    """
    from .._client import LoraPipeline
    from .._config import Settings
    from .._roles import Role

    settings = Settings.resolve(role=options.role)
    if settings.role is None and settings.access_token is None and settings.anon_key and settings.service_role_key:
        raise ConfigError(
            "both SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY are set, so the role is ambiguous: run "
            "`lora-pipeline --role service ...` for admin work (or --role anon), or export LORA_PIPELINE_ROLE=service",
            argument="role",
            env_names=("LORA_PIPELINE_ROLE",),
        )
    if settings.anon_key is None and settings.service_role_key is None:
        raise ConfigError(
            "no project key found: set SUPABASE_URL and SUPABASE_ANON_KEY (plus LORA_PIPELINE_ACCESS_TOKEN for "
            "--role user, or SUPABASE_SERVICE_ROLE_KEY for --role service); for the local stack run "
            "eval $(lora-pipeline dev env)",
            argument="anon_key",
        )
    if settings.role is Role.USER and settings.access_token is None:
        raise ConfigError(
            "--role user needs a signed-in user's access token in LORA_PIPELINE_ACCESS_TOKEN; on the local stack "
            "`eval $(lora-pipeline dev user create you@example.com)` creates a user and exports it",
            argument="access_token",
            env_names=("LORA_PIPELINE_ACCESS_TOKEN",),
        )
    return LoraPipeline(settings=settings)


def backend(name: str, lp: LoraPipeline, gpu: list[str] | None = None) -> PodBackend:
    """``local`` or ``runpod`` (with offers for ``gpu`` keys, in order)."""
    if name == "local":
        import os

        from ..backends.local import LocalBackend

        trainer = os.environ.get("LORA_TRAINER")  # LORA_TRAINER=selftest: a smoke test without ML libraries
        return LocalBackend(extra_env={"LORA_TRAINER": trainer} if trainer else None)
    if name == "runpod":
        from ..backends.runpod import RunPodBackend, RunPodOffer

        key = lp.settings.runpod_api_key
        if key is None:
            raise ConfigError(
                "the runpod backend needs RUNPOD_API_KEY",
                argument="runpod_api_key",
                env_names=("LORA_PIPELINE_RUNPOD_API_KEY", "RUNPOD_API_KEY"),
            )
        offers = [RunPodOffer(gpu_type=g) for g in gpu] if gpu else None
        return RunPodBackend(key, offers)
    raise ConfigError(f"unknown backend {name!r}: use --backend local or --backend runpod", argument="backend")


__all__ = ["ROLE_CHOICES", "backend", "client", "options"]
