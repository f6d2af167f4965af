"""What every command shares: the error boundary, the console, options read from the environment."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.console import Console

from .._exceptions import ConfigError, LoraPipelineError

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error message is one greppable line

DB_URL_ENV = ("LORA_PIPELINE_DB_URL", "SUPABASE_DB_URL", "DATABASE_URL")


def run_command(app: typer.Typer) -> int:
    """Run the Typer app; a :class:`LoraPipelineError` becomes one red line and exit code 2."""
    try:
        # With standalone_mode=False click returns the exit code of typer.Exit instead of raising it.
        result = app(standalone_mode=False)
    except LoraPipelineError as error:
        err_console.print(f"[red]error:[/red] {error}", highlight=False, markup=True)
        return 2
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        return 130
    except Exception as error:  # click usage errors and the like
        import click

        if isinstance(error, click.ClickException):
            error.show()
            return 2
        raise
    return result if isinstance(result, int) else 0


def db_url_option(value: str | None) -> str:
    """The --db-url value, else the first of LORA_PIPELINE_DB_URL / SUPABASE_DB_URL / DATABASE_URL."""
    if value:
        return value
    for name in DB_URL_ENV:
        if os.environ.get(name):
            return os.environ[name]
    raise ConfigError(
        f"missing --db-url: pass --db-url postgresql://... or set one of {', '.join(DB_URL_ENV)}",
        argument="db_url",
        env_names=DB_URL_ENV,
    )


def echo_json(value: Any) -> None:
    import json

    typer.echo(json.dumps(value, indent=2, default=str))


__all__ = ["DB_URL_ENV", "console", "db_url_option", "echo_json", "err_console", "run_command"]
