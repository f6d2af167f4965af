"""``lora-pipeline ui``: a local dashboard of jobs, live curves, comparisons, datasets and baselines.

Server-rendered (Starlette + Jinja2) with uPlot, vendored under ``static/uplot``, for charts: no build step and
nothing fetched from a CDN. It reads through the SDK as the viewer (see :mod:`._viewers`), so row-level
security decides what each page shows. Needs the ``ui`` extra.
"""

from __future__ import annotations

from ._viewers import Viewer, Viewers
from .app import create_app

__all__ = ["Viewer", "Viewers", "create_app"]
