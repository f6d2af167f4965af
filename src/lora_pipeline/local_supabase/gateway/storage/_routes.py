"""The route table of ``/storage/v1`` and the wrapper that renders every error the way Storage does.

Specific paths come before the catch-all ``/object/{bucket}/{name}`` routes, as Fastify prefers static
segments. Stricter than Fastify, a path under one of Storage's own words (``/object/list-v2/...``,
``/object/move/...``) that no specific route takes is a 404, never an upload, download or delete in a bucket
named like that word; and any path or method no route takes gets Fastify's JSON 404, never Starlette's
plain-text 404/405. Each route is named after its handler (``route.name``), which the route-table test
reads. Nothing unexpected reaches a client as a stack trace: it is logged and answered with Storage's 500
envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import psycopg
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..fault_log import log_fault
from . import _buckets as buckets
from . import _errors as errors
from . import _list_v2 as list_v2
from . import _objects as objects
from . import _signed as signed
from . import _transfer as transfer
from . import _tus as tus
from ._context import StorageContext
from ._render import json_response
from ._tus_store import TusStore

log = logging.getLogger("lora_pipeline.gateway.storage")

Endpoint = Callable[[StorageContext, Request], Awaitable[Response]]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
RESERVED_WORDS = ("list", "list-v2", "move", "copy", "sign", "upload", "info", "public", "authenticated")
"""``/object/<word>/...`` belongs to Storage's own routes, whatever buckets exist."""


def endpoint(context: StorageContext, handler: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Bind ``handler`` to the service and render its errors as the Storage API does."""

    async def run(request: Request) -> Response:
        try:
            return await handler(context, request)
        except errors.StorageError as error:
            return error.response()
        except psycopg.Error as error:
            mapped = errors.from_database(error)
            if mapped.status >= 500:
                log.warning(
                    "storage database error %s on %s %s: %s",
                    getattr(error, "sqlstate", None),
                    request.method,
                    request.url.path,
                    error,
                )
            return mapped.response()
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception as error:
            log_fault(log, error, "storage: unhandled error in %s %s", request.method, request.url.path)
            return errors.internal_error().response()

    run.__name__ = handler.__name__
    return run


async def route_not_found(request: Request) -> Response:
    """Fastify's 404 for an unknown route."""
    body = {"message": f"Route {request.method}:{request.url.path} not found", "error": "Not Found", "statusCode": 404}
    return json_response(body, status=404)


async def not_found(scope: dict[str, object], receive: object, send: object) -> None:
    """:func:`route_not_found` as the router's default."""
    await (await route_not_found(Request(scope)))(scope, receive, send)  # type: ignore[arg-type]


def build_routes(context: StorageContext, tus_store: TusStore) -> list[BaseRoute]:
    def route(path: str, handler: Endpoint, methods: list[str]) -> Route:
        return Route(path, endpoint(context, handler), methods=methods)

    def tus_route(path: str, step: tus.Step, methods: list[str], *, signed_route: bool) -> Route:
        return route(path, tus.handler(step, tus_store, signed=signed_route), methods)

    object_path = "/{bucket}/{name:path}"
    return [
        route("/bucket", buckets.list_buckets, ["GET"]),
        route("/bucket", buckets.create_bucket, ["POST"]),
        route("/bucket/{bucket_id}/empty", buckets.empty_bucket, ["POST"]),
        route("/bucket/{bucket_id}", buckets.get_bucket, ["GET"]),
        route("/bucket/{bucket_id}", buckets.update_bucket, ["PUT"]),
        route("/bucket/{bucket_id}", buckets.delete_bucket, ["DELETE"]),
        route("/object/list/{bucket}", objects.list_objects, ["POST"]),
        route("/object/list-v2/{bucket}", list_v2.list_objects_v2, ["POST"]),
        route("/object/move", transfer.move_object, ["POST"]),
        route("/object/copy", transfer.copy_object, ["POST"]),
        route("/object/sign" + object_path, signed.sign_object_url, ["POST"]),
        route("/object/sign" + object_path, signed.get_signed_object, ["GET"]),
        route("/object/sign/{bucket}", signed.sign_object_urls, ["POST"]),
        route("/object/upload/sign" + object_path, signed.sign_upload_url, ["POST"]),
        route("/object/upload/sign" + object_path, signed.upload_to_signed_url, ["PUT"]),
        route("/object/info/public" + object_path, objects.get_public_object_info, ["GET"]),
        route("/object/info/authenticated" + object_path, objects.get_authenticated_object_info, ["GET"]),
        route("/object/info" + object_path, objects.get_object_info, ["GET"]),
        route("/object/public" + object_path, objects.get_public_object, ["GET", "HEAD"]),
        route("/object/authenticated" + object_path, objects.get_authenticated_object, ["GET", "HEAD"]),
        *(Route(f"/object/{word}/{{rest:path}}", route_not_found, methods=ALL_METHODS) for word in RESERVED_WORDS),
        route("/object" + object_path, objects.get_object, ["GET", "HEAD"]),
        route("/object" + object_path, objects.upload_object, ["POST", "PUT"]),
        route("/object" + object_path, objects.delete_object, ["DELETE"]),
        route("/object/{bucket}", objects.remove_objects, ["DELETE"]),
        route("/upload/resumable", tus.tus_options, ["OPTIONS"]),
        route("/upload/resumable/sign", tus.tus_options, ["OPTIONS"]),
        route("/upload/resumable/sign/{upload_id}", tus.tus_options, ["OPTIONS"]),
        route("/upload/resumable/{upload_id}", tus.tus_options, ["OPTIONS"]),
        tus_route("/upload/resumable/sign", tus.create_upload, ["POST"], signed_route=True),
        tus_route("/upload/resumable/sign/{upload_id}", tus.upload_status, ["HEAD"], signed_route=True),
        tus_route("/upload/resumable/sign/{upload_id}", tus.append_chunk, ["PATCH"], signed_route=True),
        tus_route("/upload/resumable/sign/{upload_id}", tus.abort_upload, ["DELETE"], signed_route=True),
        tus_route("/upload/resumable", tus.create_upload, ["POST"], signed_route=False),
        tus_route("/upload/resumable/{upload_id}", tus.upload_status, ["HEAD"], signed_route=False),
        tus_route("/upload/resumable/{upload_id}", tus.append_chunk, ["PATCH"], signed_route=False),
        tus_route("/upload/resumable/{upload_id}", tus.abort_upload, ["DELETE"], signed_route=False),
        Route("/{path:path}", route_not_found, methods=ALL_METHODS),
    ]


__all__ = ["ALL_METHODS", "RESERVED_WORDS", "build_routes", "endpoint", "not_found", "route_not_found"]
