"""Everything runpod-python 1.12.0 can raise comes out as a typed lora-pipeline error (research §1.2)."""

from __future__ import annotations

import pytest
import requests
from runpod import error as sdk_error

from lora_pipeline._exceptions import (
    APIConnectionError,
    AuthenticationError,
    BadRequest,
    CapacityError,
    InsufficientFunds,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    Timeout,
)
from lora_pipeline._retry import is_retryable
from lora_pipeline.backends._runpod_graphql import error_from_sdk, root_field

CASES = [
    (sdk_error.AuthenticationError("Unauthorized request, please check your API key."), AuthenticationError),
    (
        sdk_error.QueryError("There are no longer any instances available with the requested specifications."),
        CapacityError,
    ),
    (sdk_error.QueryError("INSUFFICIENT_BALANCE: over your current spending limit ($80.00/hr)"), InsufficientFunds),
    (sdk_error.QueryError("pod not found to terminate"), NotFound),
    (sdk_error.QueryError("Forbidden: this API key is scoped to a single pod"), PermissionDenied),
    (sdk_error.QueryError("Something went wrong. Please try again later or contact support."), ServiceUnavailable),
    (sdk_error.QueryError("Syntax Error: Expected ':', found String ''."), BadRequest),
    (requests.exceptions.JSONDecodeError("Expecting value", "Too Many Requests", 0), RateLimited),
    (requests.exceptions.JSONDecodeError("Expecting value", "error code: 1010", 0), ServiceUnavailable),
    (
        requests.exceptions.JSONDecodeError("Expecting value", "<html><h1>502 Bad Gateway</h1></html>", 0),
        ServiceUnavailable,
    ),
    (requests.exceptions.ReadTimeout("read timed out"), Timeout),
    (requests.exceptions.ConnectionError("refused"), APIConnectionError),
    (KeyError("data"), ServiceUnavailable),
]


@pytest.mark.parametrize(("raised", "expected"), CASES, ids=[type(c[0]).__name__ + str(i) for i, c in enumerate(CASES)])
def test_sdk_exception_maps_to_the_error_tree(raised: BaseException, expected: type[Exception]) -> None:
    mapped = error_from_sdk(raised, resource="pod1")
    assert type(mapped) is expected and mapped.resource == "pod1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [RateLimited, ServiceUnavailable, Timeout, APIConnectionError])
def test_transient_classes_are_retryable(cls: type[Exception]) -> None:
    assert is_retryable(cls("x"))


@pytest.mark.parametrize("cls", [CapacityError, InsufficientFunds, AuthenticationError, BadRequest, NotFound])
def test_definitive_classes_are_not_retried(cls: type[Exception]) -> None:
    assert not is_retryable(cls("x"))


def test_query_text_is_dropped_from_the_sdk_error() -> None:
    raised = sdk_error.QueryError("Syntax Error", query='mutation { x(env: "SECRET") }')
    mapped = error_from_sdk(raised)
    assert raised.query is None and "SECRET" not in str(mapped)


def test_other_exceptions_pass_through() -> None:
    error = ValueError("ours")
    assert error_from_sdk(error) is error


@pytest.mark.parametrize("reply", [{}, {"data": None}, "text", {"errors": []}])
def test_reply_without_data_is_a_transient_error(reply: object) -> None:
    with pytest.raises(ServiceUnavailable):
        root_field(reply, "pod")


def test_importing_the_sdk_through_the_backend_leaves_root_logging_alone() -> None:
    import subprocess
    import sys

    code = (
        "import logging; root = logging.getLogger(); before = (list(root.handlers), root.level)\n"
        "from lora_pipeline.backends._quiet import import_runpod; import_runpod('runpod.api.graphql')\n"
        "import runpod\n"
        "print(root.handlers == before[0], root.level == before[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True"]
