"""Container images a pod may run, checked before launch.

The ``train`` extra needs transformers 5, which disables PyTorch below 2.5; letting pip upgrade an image's torch
instead pulls CUDA wheels that may not match the host driver. So the bootstrap pins the image's own torch, and
an image whose tag shows an older torch is refused here, before any pod is rented. The CUDA version in the tag
also tells RunPod which hosts can run the image (``allowedCudaVersions``: the driver must be at least as new).

RunPod tags its PyTorch images two ways, both read here::

    runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404               (current: cuda 12.8.1, torch 2.8.0)
    runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04      (older: torch first)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._exceptions import ConfigError

DEFAULT_IMAGE = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
"""RunPod's PyTorch 2.8 image on CUDA 12.8.1 (Python 3.12): satisfies the ``train`` extra."""
MIN_TORCH = (2, 5)
HOST_CUDA_VERSIONS = ("11.8", "12.0", "12.1", "12.2", "12.3", "12.4", "12.5", "12.6", "12.7", "12.8", "12.9", "13.0")
"""Host CUDA versions RunPod filters on (``allowedCudaVersions``), oldest first."""

_NEW_TAG = re.compile(r"cu(?P<cuda>\d{3,4})-torch(?P<torch>\d{3,4})")
_OLD_TAG = re.compile(r"^(?P<torch>\d+\.\d+)(?:\.\d+)?-py[\d.]+-cuda(?P<cuda>\d+\.\d+)")


@dataclass(frozen=True)
class ImageInfo:
    """What a tag tells about an image; ``None`` where the tag does not say."""

    name: str
    torch: tuple[int, int] | None
    cuda: tuple[int, int] | None

    def allowed_cuda_versions(self) -> list[str] | None:
        """Host CUDA versions that can run this image (at least its own), or ``None`` when unknown."""
        if self.cuda is None:
            return None
        return [v for v in HOST_CUDA_VERSIONS if tuple(int(p) for p in v.split(".")) >= self.cuda]


def read_image(name: str) -> ImageInfo:
    """Torch and CUDA versions from an image name's tag (RunPod's PyTorch tag forms)."""
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    new = _NEW_TAG.search(tag)
    if new:
        return ImageInfo(name, _packed(new["torch"]), _packed_cuda(new["cuda"]))
    old = _OLD_TAG.match(tag)
    if old:
        torch = tuple(int(p) for p in old["torch"].split("."))
        cuda = tuple(int(p) for p in old["cuda"].split("."))
        return ImageInfo(name, (torch[0], torch[1]), (cuda[0], cuda[1]))
    return ImageInfo(name, None, None)


def check_image(name: str | None) -> ImageInfo:
    """The image to launch (``DEFAULT_IMAGE`` when ``None``), refused when its tag shows torch older than 2.5.

    An image whose tag names no torch version (a custom image) is allowed: the bootstrap checks its torch in
    the pod and fails the job with a clear message, never a loop.

    Raises:
        ConfigError: an empty name, whitespace in it, or a tag with an older torch; names a working image.
    """
    chosen = DEFAULT_IMAGE if name is None else name
    if not chosen.strip() or any(c.isspace() for c in chosen) or "\x00" in chosen:
        raise ConfigError(f"image must be a container image name such as {DEFAULT_IMAGE}", argument="image")
    info = read_image(chosen)
    if info.torch is not None and info.torch < MIN_TORCH:
        raise ConfigError(
            f"image {chosen} carries torch {info.torch[0]}.{info.torch[1]}, but the trainer (transformers 5) needs "
            f"torch >= {MIN_TORCH[0]}.{MIN_TORCH[1]}; use {DEFAULT_IMAGE} (or leave image unset)",
            argument="image",
        )
    return info


def _packed(digits: str) -> tuple[int, int]:
    """``280`` -> (2, 8); ``2100`` -> (2, 10)."""
    return int(digits[0]), int(digits[1:-1] or 0)


def _packed_cuda(digits: str) -> tuple[int, int]:
    """``1281`` -> (12, 8); ``1241`` -> (12, 4); ``118`` -> (11, 8)."""
    return (int(digits[:2]), int(digits[2])) if len(digits) == 4 else (int(digits[:2]), int(digits[2:]))


__all__ = ["DEFAULT_IMAGE", "HOST_CUDA_VERSIONS", "MIN_TORCH", "ImageInfo", "check_image", "read_image"]
