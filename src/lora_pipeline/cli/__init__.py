"""The ``lora-pipeline`` command line. Thin: every command calls the library and formats its result.

Exit codes: 0 success, 1 a negative verdict (invalid dataset, schema gaps, gate warn/block), 2 an error.
"""

from __future__ import annotations

import sys

import typer

from ._common import run_command
from .db import app as db_app
from .dev import app as dev_app

app = typer.Typer(
    name="lora-pipeline",
    help="LoRA fine-tuning pipelines on RunPod with Supabase as the control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_app, name="db")
app.add_typer(dev_app, name="dev")


def _register_optional() -> None:
    """Command groups added by later modules (kept import-light: each imports its dependencies lazily)."""
    from importlib import import_module

    for module, name in (
        ("datasets", "datasets"),
        ("jobs", "jobs"),
        ("artifacts", "artifacts"),
        ("runpod", "runpod"),
        ("metrics", "metrics"),
        ("baselines", "baselines"),
        ("gates", "gates"),
    ):
        try:
            group = import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{module}":
                raise
            continue
        app.add_typer(group.app, name=name)


_register_optional()


@app.command()
def version() -> None:
    """Print the installed version."""
    from .._version import __version__

    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_command(app))


__all__ = ["app", "main"]
