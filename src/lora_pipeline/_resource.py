"""Base classes for resource namespaces. Logic lives in plans (see :mod:`lora_pipeline._ops`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ._ops import Plan

if TYPE_CHECKING:
    from ._base_client import ClientCore
    from ._client import AsyncLoraPipeline, LoraPipeline

T = TypeVar("T")


class SyncAPIResource:
    """A namespace on :class:`~lora_pipeline.LoraPipeline` (``lp.datasets``, ``lp.jobs``, ...)."""

    def __init__(self, client: LoraPipeline) -> None:
        self._client = client

    @property
    def _core(self) -> ClientCore:
        return self._client._core

    def _run(self, plan: Plan[T]) -> T:
        return self._client._executor.run(plan)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"


class AsyncAPIResource:
    """A namespace on :class:`~lora_pipeline.AsyncLoraPipeline`."""

    def __init__(self, client: AsyncLoraPipeline) -> None:
        self._client = client

    @property
    def _core(self) -> ClientCore:
        return self._client._core

    async def _run(self, plan: Plan[T]) -> T:
        return await self._client._executor.run(plan)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"


def unused(*_: Any) -> None:
    """Mark arguments a twin accepts for signature parity but does not need."""


__all__ = ["AsyncAPIResource", "SyncAPIResource"]
