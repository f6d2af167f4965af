"""Building clients and backends for commands, from the environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import ConfigError

if TYPE_CHECKING:
    from .._client import LoraPipeline
    from ..backends.base import PodBackend


def client() -> LoraPipeline:
    """A client from the environment (see the README's configuration reference)."""
    from .._client import LoraPipeline

    return LoraPipeline.from_env()


def backend(name: str, lp: LoraPipeline, gpu: list[str] | None = None) -> PodBackend:
    """``local`` or ``runpod`` (with offers for ``gpu`` keys, in order)."""
    if name == "local":
        from ..backends.local import LocalBackend

        return LocalBackend()
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
    raise ConfigError(f"unknown backend {name!r}: use local or runpod", argument="backend")


__all__ = ["backend", "client"]
