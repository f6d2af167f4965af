"""The ``lora-pipeline`` command line. Thin: every command calls the library and formats its result.

Exit codes: 0 success, 1 a negative verdict (invalid dataset, schema gaps, gate warn/block), 2 an error
(usage, configuration, a missing file or extra). Commands that print objects take ``--json`` and ``-q``.
"""

from __future__ import annotations

import sys

import typer

from ._clients import ROLE_CHOICES, options
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
        ("ui", "ui"),
    ):
        try:
            group = import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{module}":
                raise
            continue
        app.add_typer(group.app, name=name)


_register_optional()


def _print_version(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"lora-pipeline {__version__}")
        raise typer.Exit(0)


def _check_role(value: str | None) -> str | None:
    if value is not None and value.strip().lower() not in ROLE_CHOICES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(ROLE_CHOICES)}")
    return value.strip().lower() if value else None


@app.callback()
def root(
    role: str | None = typer.Option(
        None,
        "--role",
        callback=_check_role,
        help="service, user or anon: who the commands act as (env LORA_PIPELINE_ROLE); needed when both keys are set",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """LoRA fine-tuning pipelines on RunPod with Supabase as the control plane."""
    from .._logging import setup_from_env

    setup_from_env()
    options.role = role


@app.command("version")
def version_command() -> None:
    """Print the installed version."""
    _print_version(True)


def main(args: list[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run_command(app, args))


__all__ = ["app", "main"]
