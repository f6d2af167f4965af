"""``lora-pipeline ui``: serve the dashboard (:mod:`lora_pipeline.ui`) on a local port."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from .._exceptions import ConfigError
from .._extras import missing_modules
from ._clients import client, options
from ._common import console

if TYPE_CHECKING:
    from ..ui import Viewers

app = typer.Typer(help="Serve the web dashboard: jobs, live curves, compare, datasets, baselines.")

UI_MODULES = ("starlette", "jinja2", "uvicorn")


def dashboard_viewers() -> Viewers:
    """The CLI's credentials as dashboard viewers: a user token or ``--role service`` fix the viewer; with
    only the URL and anon key (or both keys and no role) the dashboard asks for email and password instead, so
    it never holds the service key unless told to."""
    from .._config import Settings
    from .._roles import Role
    from ..ui import Viewers

    settings = Settings.resolve(role=options.role)
    chose_service = (options.role or os.environ.get("LORA_PIPELINE_ROLE", "")).strip().lower() == "service"
    if settings.role is Role.SERVICE and chose_service:
        return Viewers(client())
    if settings.access_token is not None and settings.role in (None, Role.USER):
        return Viewers(client())
    if settings.url is None or settings.anon_key is None:
        raise ConfigError(
            "the dashboard needs SUPABASE_URL and SUPABASE_ANON_KEY (users then sign in with email and password), "
            "or `--role service` with SUPABASE_SERVICE_ROLE_KEY; for the local stack run eval $(lora-pipeline dev env)",
            argument="anon_key",
            env_names=("SUPABASE_URL", "SUPABASE_ANON_KEY"),
        )
    return Viewers(url=settings.url, anon_key=settings.anon_key.get_secret_value())


@app.callback(invoke_without_command=True)
def ui(
    port: int = typer.Option(8765, "--port", help="port to listen on"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (keep 127.0.0.1 unless you mean to share)"),
) -> None:
    """Serve the dashboard until Ctrl-C; pages read through the SDK as you (RLS decides what they show)."""
    absent = missing_modules(UI_MODULES)
    if absent:
        raise ConfigError(f"the dashboard needs {', '.join(absent)}: pip install 'lora-pipeline[ui]'")
    import uvicorn

    from ..ui import create_app

    viewers = dashboard_viewers()
    console.print(f"dashboard on http://{host}:{port}/ (Ctrl-C stops it)")
    uvicorn.run(create_app(viewers), host=host, port=port, log_level="warning")  # type: ignore[arg-type]


def serve_in_background(url: str, anon_key: str, port: int) -> None:
    """The dashboard with a sign-in page on 127.0.0.1:``port``, in a daemon thread (``dev up --ui``)."""
    import threading

    absent = missing_modules(UI_MODULES)
    if absent:
        raise ConfigError(f"--ui needs {', '.join(absent)}: pip install 'lora-pipeline[ui]'")
    import uvicorn

    from ..ui import Viewers, create_app

    config = uvicorn.Config(
        create_app(Viewers(url=url, anon_key=anon_key)), host="127.0.0.1", port=port, log_level="warning"
    )
    threading.Thread(target=uvicorn.Server(config).run, name="lora-pipeline-ui", daemon=True).start()
