"""Small ASGI apps to mount in a web app (Starlette, FastAPI).

``dataset_download_app`` serves ``GET /datasets/download?token=...`` the way the seeds' token download route
did: it redeems the single-use token and redirects to a short-lived signed Storage URL, so no CORS setup and
no key ever reaches the browser. It builds its client from the environment on first use (service role
recommended: ``SUPABASE_URL`` + ``SUPABASE_SERVICE_ROLE_KEY``, ``LORA_PIPELINE_ROLE=service``), or use
:func:`create_dataset_download_app` with an explicit client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._client import AsyncLoraPipeline


def create_dataset_download_app(client: AsyncLoraPipeline | None = None) -> Any:
    """An ASGI app answering ``GET /datasets/download?token=...`` with a 307 to the signed URL."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, RedirectResponse, Response
    from starlette.routing import Route

    from .._exceptions import (
        BadRequest,
        ConfigError,
        DownloadTokenError,
        LoraPipelineError,
        TokenAlreadyUsed,
        TokenExpired,
    )

    holder: dict[str, Any] = {"client": client}

    async def download(request: Request) -> Response:
        token = request.query_params.get("token", "")
        if not token:
            return JSONResponse({"error": "missing_token", "message": "add ?token=<download token>"}, status_code=400)
        lp = holder["client"]
        if lp is None:
            from .._client import AsyncLoraPipeline

            lp = holder["client"] = AsyncLoraPipeline.from_env()
        try:
            redeemed = await lp.tokens.redeem(token)
        except (TokenExpired, TokenAlreadyUsed) as error:
            return JSONResponse({"error": error.code, "message": error.raw_message}, status_code=410)
        except DownloadTokenError as error:
            return JSONResponse({"error": error.code, "message": error.raw_message}, status_code=404)
        except ConfigError as error:
            return JSONResponse({"error": "bad_request", "message": error.message}, status_code=400)
        except BadRequest:  # e.g. a NUL byte, which no token contains: the caller's mistake, not an outage
            return JSONResponse({"error": "bad_request", "message": "malformed download token"}, status_code=400)
        except LoraPipelineError:
            return JSONResponse({"error": "unavailable", "message": "try again later"}, status_code=503)
        return RedirectResponse(redeemed.signed_url, status_code=307, headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route("/datasets/download", download, methods=["GET"])])


class _LazyApp:
    """Builds the default app on first request so importing this module needs no configuration."""

    _app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = create_dataset_download_app()
        await self._app(scope, receive, send)


dataset_download_app = _LazyApp()

__all__ = ["create_dataset_download_app", "dataset_download_app"]
