"""``lora-pipeline dev``: the embedded Supabase-compatible stack for local work.

``dev up`` writes a pointer file (the running stack's URL and keys) that ``dev env`` and ``dev user create``
read. Several stacks may run at once; each removes the pointer on exit only while it still names that stack,
so stopping one never hides another.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from .._exceptions import ConfigError
from ._common import console, err_console
from ._output import JsonOpt, QuietOpt, emit_one

app = typer.Typer(help="Run the embedded local Supabase-compatible stack (PostgreSQL + gateway).", no_args_is_help=True)
user_app = typer.Typer(help="Users of the running local stack.", no_args_is_help=True)
app.add_typer(user_app, name="user")

POINTER = Path.home() / ".cache" / "lora-pipeline" / "dev-stack.json"


def _env_lines(values: dict[str, str], *, export: bool = False) -> str:
    prefix = "export " if export else ""
    return "\n".join(f"{prefix}{key}={value}" for key, value in values.items())


def write_pointer(values: dict[str, str], pointer: Path | None = None) -> None:
    """Record the running stack for ``dev env`` (owner-only: it holds the service key)."""
    path = pointer or POINTER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(values))


def release_pointer(url: str, pointer: Path | None = None) -> bool:
    """Remove the pointer only if it still names the stack at ``url`` (a later ``dev up`` may own it now)."""
    path = pointer or POINTER
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if current.get("SUPABASE_URL") != url:
        return False
    path.unlink(missing_ok=True)
    return True


@app.command()
def up(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="keep data between runs in this folder"),
    port: int | None = typer.Option(None, "--port", help="gateway port on 127.0.0.1"),
    ui: bool = typer.Option(False, "--ui", help="also serve the dashboard (needs the ui extra; users sign in)"),
    ui_port: int = typer.Option(8765, "--ui-port", help="the dashboard's port on 127.0.0.1"),
) -> None:
    """Start the stack in the foreground and print its URL, keys and database URL (Ctrl-C stops it)."""
    from ..local_supabase import LocalSupabase

    stack = LocalSupabase.start(data_dir=data_dir, port=port)
    try:
        values = stack.env()
        write_pointer(values)
        console.print(f"# local stack ready in {stack.started_in:.2f} s (data: {stack.root})")
        typer.echo(_env_lines(values))
        if ui:
            from .ui import serve_in_background

            serve_in_background(stack.url, stack.anon_key, ui_port)
            console.print(f"# dashboard on http://127.0.0.1:{ui_port}/ (sign in as a user of this stack)")
        console.print("# Ctrl-C to stop")
        while stack.gateway.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        release_pointer(stack.url)
        stack.stop()


def running_stack(data_dir: Path | None) -> dict[str, str]:
    """The settings of the running stack (from ``--data-dir`` or the pointer), checked to be answering."""
    import httpx

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
    return values


@app.command()
def env(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="the --data-dir of the running stack"),
    export: bool = typer.Option(False, "--export", help="prefix each line with export, for eval in a shell"),
) -> None:
    """Print the running stack's settings in .env form (``eval "$(lora-pipeline dev env --export)"``)."""
    typer.echo(_env_lines(running_stack(data_dir), export=export))


@user_app.command("create")
def user_create(
    email: str,
    password: str = typer.Option(..., "--password", prompt=True, hide_input=True, help="the new user's password"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="the --data-dir of the running stack"),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Create a confirmed user on the local stack and sign it in.

    Prints ``export`` lines for the user's access token, so ``eval $(lora-pipeline dev user create EMAIL
    --password ...)`` makes the next commands act as that user (-q: the user id; --json: id, email, token).
    """
    import httpx

    from .._client import LoraPipeline
    from .._error_mapping import error_from_response

    values = running_stack(data_dir)
    service_key = values["SUPABASE_SERVICE_ROLE_KEY"]
    response = httpx.post(
        values["SUPABASE_URL"] + "/auth/v1/admin/users",
        headers={"apikey": service_key, "Authorization": f"Bearer {service_key}"},
        json={"email": email, "password": password, "email_confirm": True},
        timeout=30,
    )
    if response.status_code >= 400:
        raise error_from_response(response, service="auth", resource=f"user {email}")
    lp = LoraPipeline.sign_in(email, password, url=values["SUPABASE_URL"], anon_key=values["SUPABASE_ANON_KEY"])
    session = lp.session
    assert session is not None
    user: dict[str, Any] = {"id": session.user_id, "email": email, "access_token": session.access_token}
    if json_out or quiet:
        emit_one(user, json_out=json_out, quiet=quiet, text=str, ident=lambda u: u["id"])
        return
    err_console.print(f"# created and signed in {email} (user {session.user_id})")
    typer.echo(f"export LORA_PIPELINE_ACCESS_TOKEN={session.access_token}\nexport LORA_PIPELINE_ROLE=user")
