"""``lora-pipeline dev``: the embedded Supabase-compatible stack for local work."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from ._common import console

app = typer.Typer(help="Run the embedded local Supabase-compatible stack (PostgreSQL + gateway).", no_args_is_help=True)

POINTER = Path.home() / ".cache" / "lora-pipeline" / "dev-stack.json"


def _env_lines(values: dict[str, str]) -> str:
    return "\n".join(f"{key}={value}" for key, value in values.items())


@app.command()
def up(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="keep data between runs in this folder"),
    port: int | None = typer.Option(None, "--port", help="gateway port on 127.0.0.1"),
) -> None:
    """Start the stack in the foreground and print its URL, keys and database URL (Ctrl-C stops it)."""
    from ..local_supabase import LocalSupabase

    stack = LocalSupabase.start(data_dir=data_dir, port=port)
    try:
        values = stack.env()
        POINTER.parent.mkdir(parents=True, exist_ok=True)
        POINTER.write_text(json.dumps(values))
        POINTER.chmod(0o600)
        console.print(f"# local stack ready in {stack.started_in:.2f} s (data: {stack.root})", highlight=False)
        typer.echo(_env_lines(values))
        console.print("# Ctrl-C to stop", highlight=False)
        while stack.gateway.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        POINTER.unlink(missing_ok=True)
        stack.stop()


@app.command()
def env(data_dir: Path | None = typer.Option(None, "--data-dir", help="the --data-dir of the running stack")) -> None:
    """Print the running stack's settings in .env form."""
    import httpx

    from .._exceptions import ConfigError

    if data_dir is not None:
        state_file = Path(data_dir) / "stack.json"
        if not state_file.exists():
            raise ConfigError(
                f"no stack state in {data_dir}: start one with `lora-pipeline dev up --data-dir {data_dir}`"
            )
        state = json.loads(state_file.read_text())
        values = {
            "SUPABASE_URL": f"http://127.0.0.1:{state['gateway_port']}",
            "SUPABASE_ANON_KEY": state["anon_key"],
            "SUPABASE_SERVICE_ROLE_KEY": state["service_role_key"],
        }
    elif POINTER.exists():
        values = json.loads(POINTER.read_text())
    else:
        raise ConfigError("no running stack found: start one with `lora-pipeline dev up`")
    try:
        httpx.get(values["SUPABASE_URL"] + "/", timeout=2)
    except httpx.HTTPError:
        raise ConfigError(
            f"the stack at {values['SUPABASE_URL']} is not answering; start it with `lora-pipeline dev up`"
        ) from None
    typer.echo(_env_lines(values))
