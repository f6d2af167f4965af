"""GPU types, per-GPU prices and stock per ``(gpuTypeId, cloudType)`` for the fake.

Prices default to :data:`lora_pipeline.gpus.GPUS` (secure cloud) with community cloud 20% cheaper. Stock is
decremented when a pod takes GPUs and given back when it stops or ends. ``stock_lies`` keeps the listing at
"High" while creates fail, which is what RunPod does in practice (research/runpod.md §1.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..._exceptions import ConfigError
from ...gpus import GPUS, get_gpu

CLOUDS = ("SECURE", "COMMUNITY")
_COMMUNITY_DISCOUNT = 0.8


def resolve_gpu_id(gpu: str) -> str:
    """A RunPod ``gpuTypeId`` from a GPU key (``A40``); any other id (``NVIDIA RTX A6000``) is kept as is."""
    try:
        return get_gpu(gpu).runpod_id
    except ConfigError:
        return gpu


@dataclass
class GpuEntry:
    """One GPU type in the catalog."""

    id: str
    display_name: str
    memory_gb: int
    secure_price: float | None
    community_price: float | None


def _default_entries() -> dict[str, GpuEntry]:
    entries = {}
    for config in GPUS.values():
        display = config.runpod_id.removeprefix("NVIDIA ").removeprefix("GeForce ")
        community = round(config.price_per_hour * _COMMUNITY_DISCOUNT, 2)
        entries[config.runpod_id] = GpuEntry(
            config.runpod_id, display, config.vram_gb, config.price_per_hour, community
        )
    return entries


class Catalog:
    """What can be rented and at what price."""

    def __init__(self, *, default_stock: int = 4, stock_lies: bool = False) -> None:
        self.entries = _default_entries()
        self.stock: dict[tuple[str, str], int] = {
            (gpu_id, cloud): default_stock for gpu_id in self.entries for cloud in CLOUDS
        }
        self.stock_lies = stock_lies

    def set_price(self, gpu: str, *, secure: float | None, community: float | None) -> None:
        gpu_id = resolve_gpu_id(gpu)
        entry = self.entries.get(gpu_id) or GpuEntry(gpu_id, gpu_id, 0, None, None)
        entry.secure_price, entry.community_price = secure, community
        self.entries[gpu_id] = entry

    def set_stock(self, gpu: str, cloud: str, count: int) -> None:
        self.stock[(resolve_gpu_id(gpu), cloud)] = count

    def price(self, gpu_id: str, cloud: str) -> float | None:
        """Per-GPU on-demand price in one cloud; with ``ALL`` the cheapest cloud that lists one."""
        entry = self.entries.get(gpu_id)
        if entry is None:
            return None
        prices = {"SECURE": entry.secure_price, "COMMUNITY": entry.community_price}
        listed = [p for c, p in prices.items() if p is not None and cloud in (c, "ALL")]
        return min(listed) if listed else None

    def allocate(self, gpu_id: str, cloud: str, count: int) -> str | None:
        """Take ``count`` GPUs; returns the cloud they came from (cheapest first for ``ALL``), or ``None``."""
        candidates = [c for c in CLOUDS if cloud in (c, "ALL") and self.price(gpu_id, c) is not None]
        candidates.sort(key=lambda c: self.price(gpu_id, c) or 0.0)
        for candidate in candidates:
            if self.stock.get((gpu_id, candidate), 0) >= count:
                self.stock[(gpu_id, candidate)] -= count
                return candidate
        return None

    def release(self, gpu_id: str, cloud: str, count: int) -> None:
        self.stock[(gpu_id, cloud)] = self.stock.get((gpu_id, cloud), 0) + count

    def gpu_types(self, gpu_id: str | None) -> list[dict[str, Any]]:
        """``gpuTypes`` answers: every type, or the one asked for (an unknown id gives an empty list)."""
        ids = [gpu_id] if gpu_id is not None else list(self.entries)
        return [self._view(self.entries[i]) for i in ids if i in self.entries]

    def _view(self, entry: GpuEntry) -> dict[str, Any]:
        def lowest_price(_info: Any, input: dict[str, Any] | None = None) -> dict[str, Any]:
            return self._lowest_price(entry, input or {})

        return {
            "id": entry.id,
            "displayName": entry.display_name,
            "manufacturer": "Nvidia",
            "memoryInGb": entry.memory_gb,
            "maxGpuCount": 8,
            "cudaCores": 0,
            "secureCloud": entry.secure_price is not None,
            "communityCloud": entry.community_price is not None,
            "securePrice": entry.secure_price,
            "communityPrice": entry.community_price,
            "oneMonthPrice": None,
            "threeMonthPrice": None,
            "oneWeekPrice": None,
            "secureSpotPrice": _half(entry.secure_price),
            "communitySpotPrice": _half(entry.community_price),
            "lowestPrice": lowest_price,
        }

    def _lowest_price(self, entry: GpuEntry, request: dict[str, Any]) -> dict[str, Any]:
        secure = request.get("secureCloud")
        cloud = "ALL" if secure is None else ("SECURE" if secure else "COMMUNITY")
        free = sum(n for (gpu_id, c), n in self.stock.items() if gpu_id == entry.id and cloud in (c, "ALL"))
        price = self.price(entry.id, cloud)
        return {
            "uninterruptablePrice": price,
            "minimumBidPrice": _half(price),
            "stockStatus": "High" if self.stock_lies else _stock_status(free),
            "availableGpuCounts": [n for n in (1, 2, 4, 8) if n <= free],
        }


def _half(price: float | None) -> float | None:
    return None if price is None else round(price / 2, 3)


def _stock_status(free: int) -> str | None:
    if free <= 0:
        return None
    return "High" if free >= 8 else "Medium" if free >= 3 else "Low"


__all__ = ["CLOUDS", "Catalog", "GpuEntry", "resolve_gpu_id"]
