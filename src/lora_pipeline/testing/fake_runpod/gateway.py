"""One request through the fake, in the order the real API applies its checks.

path → API key (401) → JSON body (400) → GraphQL parse (400 ``GRAPHQL_PARSE_FAILED``) → validation against
:data:`SCHEMA` (400 ``GRAPHQL_VALIDATION_FAILED``) → the next scripted fault for the operation → execution.
Every request is recorded as a :class:`FakeCall` before anything can refuse it, so tests can assert on
exactly what reached the wire.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    execute,
    parse,
    validate,
    value_from_ast,
)

from .faults import Fault, FaultScript, Reply, fault_reply, graphql_error
from .resolvers import ROOT, RequestContext
from .schema import SCHEMA
from .state import RunPodState

DROP = None
"""What :meth:`Gateway.handle` returns when the connection must be closed without a reply."""


@dataclass
class FakeCall:
    """One request the fake received, for assertions.

    ``input`` is the root field's ``input`` argument as Python values (variables substituted), e.g.
    ``{"name": "lp-x-1", "env": [{"key": "A", "value": "1"}], ...}``; ``None`` when the request did not parse.
    """

    raw_body: bytes
    headers: dict[str, str]
    at: datetime
    """The virtual time the request arrived."""
    api_key: str | None = None
    query: str | None = None
    variables: dict[str, Any] | None = None
    operation: str | None = None
    """The first root field (``podFindAndDeployOnDemand``, ``pod``, ``myself`` ...)."""
    operation_type: str | None = None
    input: dict[str, Any] | None = None
    fault: Fault | None = None
    status: int | None = None
    """HTTP status answered; ``None`` when the connection was dropped."""
    response: Any = field(default=None, repr=False)


@dataclass
class _Request:
    document: DocumentNode
    variables: dict[str, Any] | None
    operation_name: str | None


class Gateway:
    """Turns raw HTTP requests into replies; shared by all server threads."""

    def __init__(self, state: RunPodState, faults: FaultScript, stopping: threading.Event) -> None:
        self.state = state
        self.faults = faults
        self.calls: list[FakeCall] = []
        self.lock = threading.RLock()
        self._stopping = stopping

    def handle(self, target: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        """Answer one ``POST``; returns :data:`DROP` to close the connection without a reply."""
        with self.lock:
            call = FakeCall(raw_body=body, headers=dict(headers), at=self.state.now)
            self.calls.append(call)
        reply = self._process(call, target, headers, body)
        call.status = reply.status if reply else None
        call.response = _decoded(reply)
        return reply

    def _process(self, call: FakeCall, target: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        url = urlsplit(target)
        if url.path.rstrip("/") != "/graphql":
            return Reply.json(404, {"errors": [{"message": f"no route for {url.path}"}]})
        call.api_key = _api_key(headers, url.query)
        principal = self.state.principal(call.api_key)
        if principal is None:
            return Reply.json(401, graphql_error("Unauthorized: missing or unknown API key", "UNAUTHENTICATED"))
        request = self._read(call, body)
        if isinstance(request, Reply):
            return request
        call.fault = self.faults.take(call.operation)
        early = self._apply_fault(call.fault, call.operation or "")
        if early is not None or (call.fault and call.fault.kind == "drop_connection"):
            return early
        reply = self._execute(request, RequestContext(principal, self.state))
        return DROP if call.fault and call.fault.kind == "drop_connection_after" else reply

    def _read(self, call: FakeCall, body: bytes) -> _Request | Reply:
        try:
            payload = json.loads(body)
        except ValueError:
            return Reply.json(400, graphql_error("POST body must be JSON", "BAD_REQUEST"))
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return Reply.json(400, graphql_error("POST body must have a string 'query'", "BAD_REQUEST"))
        call.query, call.variables = payload["query"], payload.get("variables")
        try:
            document = parse(call.query)
        except GraphQLSyntaxError as error:
            return Reply.json(400, {"errors": [_formatted(error, "GRAPHQL_PARSE_FAILED")]})
        errors = validate(SCHEMA, document)
        if errors:
            return Reply.json(400, {"errors": [_formatted(e, "GRAPHQL_VALIDATION_FAILED") for e in errors]})
        request = _Request(document, call.variables, payload.get("operationName"))
        _describe(call, request)
        return request

    def _apply_fault(self, fault: Fault | None, operation: str) -> Reply | None:
        if fault is None:
            return None
        if fault.kind == "delay":
            self._stopping.wait(fault.seconds)  # real time: this exercises the client's own timeout
        return fault_reply(fault, operation)

    def _execute(self, request: _Request, context: RequestContext) -> Reply:
        with self.lock:
            result = execute(
                SCHEMA,
                request.document,
                root_value=ROOT,
                context_value=context,
                variable_values=request.variables,
                operation_name=request.operation_name,
            )
        payload: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
        if result.errors:  # type: ignore[union-attr]
            payload["errors"] = [error.formatted for error in result.errors]  # type: ignore[union-attr]
        return Reply.json(200, payload)


def _api_key(headers: Mapping[str, str], query: str) -> str | None:
    """``Authorization: Bearer <key>`` or ``?api_key=<key>`` (both are documented)."""
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    values = parse_qs(query).get("api_key")
    return values[0] if values else None


def _formatted(error: GraphQLError, code: str) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": code}
    return formatted


def _describe(call: FakeCall, request: _Request) -> None:
    """Record the operation's first root field and its ``input`` argument as Python values."""
    operations = [d for d in request.document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = next((o for o in operations if o.name and o.name.value == request.operation_name), operations[0])
    call.operation_type = chosen.operation.value
    node = next((s for s in chosen.selection_set.selections if isinstance(s, FieldNode)), None)
    if node is None:
        return
    call.operation = node.name.value
    root = SCHEMA.get_root_type(chosen.operation)
    definition = root.fields.get(call.operation) if root else None
    argument = next((a for a in node.arguments or () if a.name.value == "input"), None)
    if definition is not None and argument is not None and "input" in definition.args:
        value = value_from_ast(argument.value, definition.args["input"].type, request.variables)
        call.input = value if isinstance(value, dict) else None


def _decoded(reply: Reply | None) -> Any:
    if reply is None:
        return None
    try:
        return json.loads(reply.body)
    except ValueError:
        return reply.body.decode("utf-8", "replace")


__all__ = ["DROP", "FakeCall", "Gateway"]
