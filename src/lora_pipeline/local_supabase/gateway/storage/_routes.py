"""The route table of ``/storage/v1`` and the wrapper that renders every error the way Storage does.

Specific paths come before the catch-all ``/object/{bucket}/{name}`` routes, as Fastify prefers static
segments. Nothing unexpected reaches a client as a stack trace: it is logged and answered with Storage's
500 envelope.
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
from . import _objects as objects
from . import _signed as signed
from . import _transfer as transfer
from . import _tus as tus
from ._context import StorageContext
from ._render import json_response
from ._tus_store import TusStore

log = logging.getLogger("lora_pipeline.gateway.storage")

Endpoint = Callable[[StorageContext, Request], Awaitable[Response]]


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

    return run


async def not_found(scope: dict[str, object], receive: object, send: object) -> None:
    """Fastify's 404 for an unknown route."""
    request = Request(scope)  # type: ignore[arg-type]
    body = {"message": f"Route {request.method}:{request.url.path} not found", "error": "Not Found", "statusCode": 404}
    await json_response(body, status=404)(scope, receive, send)  # type: ignore[arg-type]


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
    ]


__all__ = ["build_routes", "endpoint", "not_found"]
