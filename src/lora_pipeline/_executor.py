"""Drive a resource's plan (a generator of ops) with real I/O. See :mod:`lora_pipeline._ops` for the shape."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ._error_mapping import error_from_exception, error_from_response
from ._exceptions import LoraPipelineError
from ._logging import get_logger
from ._ops import ApiResult, Call, Http, HttpResult, Now, Offload, Op, Plan, Sleep
from ._retry import async_retrying, retrying

if TYPE_CHECKING:
    from ._base_client import ClientCore

T = TypeVar("T")
_CHUNK = 1024 * 1024


def _unwrap(error: BaseException) -> BaseException:
    """The error to throw into the plan: an offloaded call's own exception, not our wrapper."""
    return error.__cause__ if isinstance(error, OffloadError) and error.__cause__ is not None else error


class OffloadError(Exception):
    """Carries an exception raised by offloaded work back into the plan (as ``__cause__``)."""


log = get_logger("executor")


def _call_offloaded(op: Offload) -> Any:
    try:
        return op.fn(*op.args, **op.kwargs)
    except BaseException as error:
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        raise OffloadError() from error


class _ExecutorBase:
    """What both executors share: role choice, request building and response checking (no I/O)."""

    def __init__(self, core: ClientCore) -> None:
        self.core = core
        self.before_call: Callable[[], Any] | None = None
        """Run before each request (a signed-in client renews its session there; it may swap ``core``)."""

    def _role_name(self, op: Call | Http) -> str:
        return (op.role or self.core.role).value

    def _retries(self, op: Call | Http) -> int:
        return self.core.max_retries if op.idempotent else 0

    def _request_kwargs(self, op: Http) -> dict[str, Any]:
        headers = dict(self.core.auth_headers(op.role)) if op.authenticate else {}
        headers.update(op.headers)
        url = op.path if op.path.startswith(("http://", "https://")) else self.core.url + op.path
        kwargs: dict[str, Any] = {"method": op.method, "url": url, "headers": headers, "params": op.params}
        if op.content is not None:
            kwargs["content"] = op.content
        elif op.json is not None:
            kwargs["json"] = op.json
        return kwargs

    def _check(self, op: Http, response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise error_from_response(response, service=op.service, role=self._role_name(op), resource=op.what)

    @staticmethod
    def _api_result(value: Any) -> Any:
        if hasattr(value, "data") and hasattr(value, "count"):
            return ApiResult(data=value.data, count=value.count)
        return value


class SyncExecutor(_ExecutorBase):
    """Runs plans with the sync supabase client and httpx.Client."""

    def __init__(
        self,
        core: ClientCore,
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(core)
        self.sleep = sleep or time.sleep
        self.clock = clock or time.monotonic

    def run(self, plan: Plan[T]) -> T:
        """Perform every op the plan yields, sending results (or throwing errors) back in."""
        try:
            op = next(plan)
            while True:
                try:
                    result = self._perform(op)
                except (LoraPipelineError, OffloadError) as error:
                    op = plan.throw(_unwrap(error))
                else:
                    op = plan.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _perform(self, op: Op) -> Any:
        if isinstance(op, Sleep):
            self.sleep(op.seconds)
            return None
        if isinstance(op, Now):
            return self.clock()
        if isinstance(op, Offload):
            return _call_offloaded(op)
        if self.before_call is not None:
            self.before_call()
        log.debug("%s as %s", op.what, self._role_name(op))
        for attempt in retrying(self._retries(op), sleep=self.sleep):
            with attempt:
                return self._once(op)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, op: Call | Http) -> Any:
        try:
            if isinstance(op, Call):
                value = op.fn(self.core.sync_supabase(op.role))
                if hasattr(value, "execute"):
                    value = value.execute()
                return self._api_result(value)
            return self._http(op)
        except LoraPipelineError:
            raise
        except Exception as error:
            raise error_from_exception(error, role=self._role_name(op), resource=op.what) from error

    def _http(self, op: Http) -> HttpResult:
        client = self.core.sync_http()
        if op.dest is None:
            response = client.request(**self._request_kwargs(op))
            self._check(op, response)
            return HttpResult(response.status_code, response.headers, response.content)
        with client.stream(**self._request_kwargs(op)) as response:
            if response.status_code >= 400:
                response.read()
                self._check(op, response)
            written = 0
            with open(op.dest, "r+b" if op.dest_offset else "wb") as out:
                out.seek(op.dest_offset)
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    if op.on_chunk:
                        op.on_chunk(len(chunk))
            return HttpResult(response.status_code, response.headers, b"", written)


class AsyncExecutor(_ExecutorBase):
    """Runs plans with the async supabase client and httpx.AsyncClient."""

    def __init__(
        self,
        core: ClientCore,
        *,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(core)
        self.sleep = sleep or asyncio.sleep
        self.clock = clock or time.monotonic

    async def run(self, plan: Plan[T]) -> T:
        """Perform every op the plan yields, sending results (or throwing errors) back in."""
        try:
            op = next(plan)
            while True:
                try:
                    result = await self._perform(op)
                except (LoraPipelineError, OffloadError) as error:
                    op = plan.throw(_unwrap(error))
                else:
                    op = plan.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _perform(self, op: Op) -> Any:
        if isinstance(op, Sleep):
            await self.sleep(op.seconds)
            return None
        if isinstance(op, Now):
            return self.clock()
        if isinstance(op, Offload):
            return await asyncio.to_thread(_call_offloaded, op)
        if self.before_call is not None:
            await self.before_call()
        log.debug("%s as %s", op.what, self._role_name(op))
        async for attempt in async_retrying(self._retries(op), sleep=self.sleep):
            with attempt:
                return await self._once(op)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, op: Call | Http) -> Any:
        try:
            if isinstance(op, Call):
                value = op.fn(self.core.async_supabase(op.role))
                if hasattr(value, "execute"):
                    value = value.execute()
                if inspect.isawaitable(value):
                    value = await value
                return self._api_result(value)
            return await self._http(op)
        except LoraPipelineError:
            raise
        except Exception as error:
            raise error_from_exception(error, role=self._role_name(op), resource=op.what) from error

    async def _http(self, op: Http) -> HttpResult:
        client = self.core.async_http()
        if op.dest is None:
            response = await client.request(**self._request_kwargs(op))
            self._check(op, response)
            return HttpResult(response.status_code, response.headers, response.content)
        async with client.stream(**self._request_kwargs(op)) as response:
            if response.status_code >= 400:
                await response.aread()
                self._check(op, response)
            written = 0
            with open(op.dest, "r+b" if op.dest_offset else "wb") as out:
                out.seek(op.dest_offset)
                async for chunk in response.aiter_bytes(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    if op.on_chunk:
                        op.on_chunk(len(chunk))
            return HttpResult(response.status_code, response.headers, b"", written)


__all__ = ["AsyncExecutor", "SyncExecutor"]
