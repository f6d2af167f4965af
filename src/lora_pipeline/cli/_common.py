"""What every command shares: the error boundary, the consoles, options read from the environment.

The boundary turns every expected failure into one line on stderr: usage errors exit 2 with the usage line,
library errors and missing files exit 2, a missing optional dependency names its extra. Only a bug in
lora-pipeline itself still shows a traceback.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from .._exceptions import ConfigError, LoraPipelineError
from .._extras import install_hint

# soft_wrap: a message is never broken across lines, so piped output stays greppable whatever COLUMNS says.
console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)

DB_URL_ENV = ("LORA_PIPELINE_DB_URL", "SUPABASE_DB_URL", "DATABASE_URL")
USAGE_ERROR = 2


def _click() -> ModuleType:
    """The click that typer uses: typer >= 0.20 bundles its own (``typer._click``), older ones use click."""
    try:
        from typer import _click as bundled  # type: ignore[attr-defined]

        return bundled  # type: ignore[no-any-return]
    except ImportError:
        import click

        return click


def fail_line(message: str) -> None:
    """Print ``error: <message>`` on stderr as plain text (``[local]`` in a hint is not Rich markup)."""
    line = Text("error: ", style="red")
    line.append(message)
    err_console.print(line)


def run_command(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run the Typer app and return its exit code; see the module docstring for what each failure becomes."""
    click = _click()
    exits = (typer.Exit, getattr(click.exceptions, "Exit", typer.Exit))
    aborts = (typer.Abort, getattr(click.exceptions, "Abort", typer.Abort), KeyboardInterrupt)
    try:
        # With standalone_mode=False click hands back exceptions and exit codes instead of exiting.
        result = app(args=args, standalone_mode=False, prog_name="lora-pipeline")
    except click.exceptions.NoArgsIsHelpError:
        return 0  # typer has printed the help already: asking for nothing is asking for help
    except click.exceptions.ClickException as error:
        error.show()
        return error.exit_code if error.exit_code else USAGE_ERROR
    except exits as done:
        return int(done.exit_code or 0)
    except aborts:
        err_console.print("aborted")
        return 130
    except LoraPipelineError as error:
        fail_line(str(error))
        return USAGE_ERROR
    except ImportError as error:
        fail_line(_missing_module_message(error))
        return USAGE_ERROR
    except OSError as error:
        fail_line(_os_error_message(error))
        return USAGE_ERROR
    except ValueError as error:  # enum values and the like from the library's own input checks
        fail_line(str(error))
        return USAGE_ERROR
    return result if isinstance(result, int) else 0


def _missing_module_message(error: ImportError) -> str:
    hint = install_hint(error.name) if error.name else None
    if hint is None or "pip install" in str(error):
        return str(error)
    return f"this command needs the optional package {str(error.name).split('.')[0]}: {hint}"


def _os_error_message(error: OSError) -> str:
    if error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return str(error)


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
    """One JSON document on stdout."""
    import json

    typer.echo(json.dumps(value, indent=2, default=str))


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


__all__ = [
    "DB_URL_ENV",
    "console",
    "db_url_option",
    "echo_json",
    "err_console",
    "fail_line",
    "run_command",
    "stdout_is_terminal",
]
