"""The dashboard's Starlette app: server-rendered pages plus two JSON routes the job page polls.

Every handler is a plain function (Starlette runs it in its thread pool) that reads through the viewer's
:class:`~lora_pipeline.LoraPipeline`; what a viewer may see is decided by Postgres (RLS), not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .._exceptions import AuthenticationError, LoraPipelineError, NotFound, PermissionDenied
from ._series import CHART_METRICS, SeriesCache, points_payload
from ._viewers import SESSION_COOKIE, Viewer, Viewers
from .pages import PAGE_ROUTES, Handler, Page

HERE = Path(__file__).parent
POLL_SECONDS = 2.0
"""How often the job page asks for new points."""


def create_app(viewers: Viewers, *, poll_seconds: float = POLL_SECONDS) -> Starlette:
    """The dashboard for ``viewers`` (see :class:`Viewers` for the two ways in)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    cache = SeriesCache()

    def render(request: Request, viewer: Viewer, page: Page) -> Response:
        context = {"viewer": viewer, "poll_ms": int(poll_seconds * 1000), **page.context}
        return templates.TemplateResponse(request, page.template, context, status_code=page.status)

    def guarded(handler: Handler, *, api: bool = False) -> Any:
        """Resolve the viewer, run the handler, turn expected failures into a page (or JSON for ``api``)."""

        def endpoint(request: Request) -> Response:
            viewer = viewers.for_session(request.cookies.get(SESSION_COOKIE))
            if viewer is None:
                return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)
            result: Page | Response
            try:
                result = handler(request, viewer, cache)
            except AuthenticationError:
                viewers.sign_out(request.cookies.get(SESSION_COOKIE))
                return RedirectResponse("/signin?expired=1", status_code=303)
            except (NotFound, PermissionDenied) as error:
                result = Page("error.html", {"title": "Not found", "message": str(error)}, status=404)
            except LoraPipelineError as error:
                result = Page("error.html", {"title": "Error", "message": str(error)}, status=400)
            if not isinstance(result, Page):
                return result
            if api:
                return JSONResponse({"error": result.context.get("message", "")}, status_code=result.status)
            return render(request, viewer, result)

        return endpoint

    def sign_in_page(request: Request) -> Response:
        if not viewers.sign_in_enabled:
            return RedirectResponse("/jobs", status_code=303)
        expired = "expired" in request.query_params
        context = {"viewer": None, "error": "Your session ended: sign in again." if expired else None}
        return templates.TemplateResponse(request, "signin.html", {**context, "email": ""})

    async def sign_in_submit(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        email, password = form.get("email", "").strip(), form.get("password", "")
        try:
            session_id = viewers.sign_in(email, password) if email and password else None
        except AuthenticationError:
            session_id = None
        if session_id is None:
            context = {"viewer": None, "email": email, "error": "Wrong email or password (or no such user)."}
            return templates.TemplateResponse(request, "signin.html", context, status_code=401)
        response = RedirectResponse(_local_path(request.query_params.get("next", "")), status_code=303)
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict")
        return response

    def sign_out(request: Request) -> Response:
        viewer = viewers.sign_out(request.cookies.get(SESSION_COOKIE))
        if viewer is not None:
            cache.forget(viewer.key)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    routes = [
        Route("/", lambda request: RedirectResponse("/jobs", status_code=303)),
        Route("/signin", sign_in_page, methods=["GET"]),
        Route("/signin", sign_in_submit, methods=["POST"]),
        Route("/signout", sign_out, methods=["POST"]),
        Route("/api/jobs/{job_id}/metrics", guarded(new_points, api=True)),
        Route("/api/jobs/{job_id}/series", guarded(series_window, api=True)),
        *[Route(path, guarded(handler)) for path, handler in PAGE_ROUTES],
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes)


def new_points(request: Request, viewer: Viewer, cache: SeriesCache) -> Response:
    """A live tick: the points with ``step > after``, events after ``events_after`` and the job's status.

    Reads ``metrics_points`` with ``step > last_seen`` only, so a tick costs the new rows, never the history.
    """
    job_id = request.path_params["job_id"]
    after = _int(request.query_params.get("after"), -1)
    events_after = _int(request.query_params.get("events_after"), 0)
    lp = viewer.client
    points = lp.metrics.history(job_id, since_step=after + 1)
    cache.get(viewer.key, job_id).extend(points)
    job = lp.jobs.retrieve(job_id)
    events = lp.jobs.events(job_id, after_id=events_after)
    return JSONResponse(
        {
            "points": points_payload(points),
            "status": job.status_text(),
            "terminal": job.terminal,
            "progress": job.progress,
            "events": [_event(e) for e in events],
        }
    )


def series_window(request: Request, viewer: Viewer, cache: SeriesCache) -> Response:
    """The points between ``start`` and ``end`` (the whole history when neither is given; a zoomed range
    otherwise), downsampled only when still too many. Rows the viewer's cache lacks are read first (all of
    them on a first visit, only ``step > last_seen`` after that)."""
    job_id = viewer.client.jobs.retrieve(request.path_params["job_id"]).id  # another's job: NotFound, a 404
    series = cache.get(viewer.key, job_id)
    new = viewer.client.metrics.history(job_id, columns=list(CHART_METRICS), since_step=series.last_step + 1)
    series.extend(new)
    start, end = _float(request.query_params.get("start")), _float(request.query_params.get("end"))
    return JSONResponse(series.window(start, end).columns())


def _local_path(target: str) -> str:
    """``next`` only within this app: ``//host`` or ``/\\host`` would send a just-signed-in user elsewhere."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/jobs"


def _event(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "level": event.level,
        "kind": event.kind,
        "message": event.message,
        "at": event.created_at.isoformat() if event.created_at else "",
    }


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
