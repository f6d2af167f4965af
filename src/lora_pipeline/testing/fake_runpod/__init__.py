"""An offline RunPod GraphQL API for tests: strict parsing, a pod state machine on a virtual clock, faults.

Run the unmodified ``runpod`` SDK (1.12.x) or :class:`~lora_pipeline.backends.runpod.RunPodBackend` against
it by pointing ``RUNPOD_API_BASE_URL`` at :attr:`FakeRunPod.url` (``fake.environment()`` does that).
The specification it follows is research/runpod.md §4.
"""

from __future__ import annotations

from .containers import ContainerRunner
from .faults import KINDS as FAULT_KINDS
from .faults import Fault
from .gateway import FakeCall
from .schema import SCHEMA, SDL
from .server import BASE_URL_ENV, FakeRunPod
from .state import CAPACITY_MESSAGE, FakePod, Phase

__all__ = [
    "BASE_URL_ENV",
    "CAPACITY_MESSAGE",
    "FAULT_KINDS",
    "SCHEMA",
    "SDL",
    "ContainerRunner",
    "FakeCall",
    "FakePod",
    "FakeRunPod",
    "Fault",
    "Phase",
]
