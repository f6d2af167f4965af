"""Input an anonymous caller controls never makes the gateway answer 500 or log a traceback (issue 12 item 6).

Each known way in (``or=``/``select=`` nested ~400 deep, JSON bodies nested 1500 deep, a signed URL made with
``expiresIn`` 1e12, a 6000-character object key) must get a 4xx in its service's error shape, and a quick
hypothesis fuzz of query strings, bodies and keys must find no 500. The requests go to a second gateway
served in a thread of this process over the stack's database, so the test sees every log record the gateway
writes: a client's mistake is answered, never logged as a fault.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.local_supabase.gateway.fault_log import MAX_CHARS, MAX_FRAMES, describe_fault
from lora_pipeline.local_supabase.gateway.rest.grammar import MAX_NESTING
from lora_pipeline.local_supabase.gateway.server import GatewayThread
from lora_pipeline.local_supabase.postgres import free_port

from .conftest import anon_headers, new_person, service_headers, user_headers

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)


class Records(logging.Handler):
    """Every record the gateway (or uvicorn serving it) writes while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Only the gateway's own loggers: a pod thread an earlier test left in this process is not the gateway.
        if record.name.startswith(("lora_pipeline.gateway", "uvicorn")):
            self.records.append(record)

    def faults(self) -> list[str]:
        """Records at WARNING or above: what a fault (or a traceback) would produce."""
        return [record.getMessage()[:500] for record in self.records if record.levelno >= logging.WARNING]


@pytest.fixture(scope="module")
def gateway(stack: LocalSupabase) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="lp-fuzz-gateway-") as storage_root:
        config = stack.config.model_copy(update={"port": free_port(), "storage_root": Path(storage_root)})
        runner = GatewayThread(config)
        runner.start()
        try:
            yield config.public_url
        finally:
            runner.stop()


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture(scope="module")
def http(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def bucket(http: httpx.Client, stack: LocalSupabase) -> str:
    """An unrestricted private bucket holding ``a/b.txt``."""
    name = f"sec-fuzz-{uuid.uuid4().hex[:8]}"
    created = http.post("/storage/v1/bucket", json={"id": name, "name": name}, headers=service_headers(stack))
    assert created.status_code == 200, created.text
    upload = http.post(
        f"/storage/v1/object/{name}/a/b.txt",
        content=b"hi",
        headers=service_headers(stack) | {"content-type": "text/plain"},
    )
    assert upload.status_code == 200, upload.text
    return name


def nested_logic(depth: int) -> str:
    tree = "name.eq.x"
    for _ in range(depth - 1):
        tree = f"or(name.eq.x,{tree})"
    return f"({tree})"


def nested_select(depth: int) -> str:
    select = "id"
    for _ in range(depth):
        select = f"datasets({select})"
    return select


def postgrest_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"code", "details", "hint", "message"}, body
    return str(body["code"])


def storage_code(response: httpx.Response) -> tuple[str, str]:
    body = response.json()
    assert {"statusCode", "error", "message"} <= set(body), body
    return str(body["statusCode"]), str(body.get("code"))


def test_deep_logic_trees_and_embeds_are_parse_errors(
    http: httpx.Client, stack: LocalSupabase, records: Records
) -> None:
    for params in ({"or": nested_logic(400)}, {"select": nested_select(400)}, {"and": nested_logic(MAX_NESTING + 1)}):
        response = http.get("/rest/v1/datasets", params=params, headers=anon_headers(stack))
        assert response.status_code == 400, response.text
        assert postgrest_code(response) == "PGRST100"
        assert f"nesting deeper than {MAX_NESTING} levels" in response.json()["details"]
    user = user_headers(stack, new_person(stack))
    at_limit = http.get("/rest/v1/datasets", params={"or": nested_logic(MAX_NESTING)}, headers=user)
    assert (at_limit.status_code, at_limit.json()) == (200, [])
    assert records.faults() == []


@pytest.mark.parametrize("path", ["/rest/v1/datasets", "/rest/v1/rpc/ingest_metrics"])
def test_deep_json_to_rest_is_invalid_json(
    http: httpx.Client, stack: LocalSupabase, records: Records, path: str
) -> None:
    body = "[" * 1500 + "]" * 1500
    response = http.post(path, content=body, headers=anon_headers(stack) | {"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert postgrest_code(response) == "PGRST102"
    assert records.faults() == []


def test_deep_json_to_storage_and_auth_is_refused_in_their_shapes(
    http: httpx.Client, stack: LocalSupabase, bucket: str, records: Records
) -> None:
    deep = '{"prefix": ' + "[" * 1500 + "]" * 1500 + "}"
    json_headers = anon_headers(stack) | {"content-type": "application/json"}
    listed = http.post(f"/storage/v1/object/list/{bucket}", content=deep, headers=json_headers)
    assert listed.status_code == 400 and storage_code(listed) == ("400", "InvalidRequest")
    signup = http.post("/auth/v1/signup", content=deep, headers=json_headers)
    assert signup.status_code == 400
    assert signup.json()["error_code"] == "bad_json" and "nested deeper than" in signup.json()["msg"]
    metadata = base64.b64encode(("[" * 1500 + "]" * 1500).encode()).decode()
    upload = http.post(
        f"/storage/v1/object/{bucket}/deep/{uuid.uuid4().hex}.txt",
        content=b"x",
        headers=service_headers(stack) | {"content-type": "text/plain", "x-metadata": metadata},
    )
    assert upload.status_code == 200, upload.text  # metadata that is not a JSON object is dropped, as Storage does
    assert records.faults() == []


def test_a_signed_url_that_outlives_http_dates_still_serves(
    http: httpx.Client, stack: LocalSupabase, bucket: str, records: Records
) -> None:
    signed = http.post(
        f"/storage/v1/object/sign/{bucket}/a/b.txt", json={"expiresIn": 10**12}, headers=service_headers(stack)
    )
    assert signed.status_code == 200, signed.text
    served = http.get("/storage/v1" + signed.json()["signedURL"])
    assert (served.status_code, served.content) == (200, b"hi")
    assert served.headers["expires"] == "Fri, 31 Dec 9999 23:59:59 GMT"
    for too_long in (2**53, 10**400, "9" * 5000):
        refused = http.post(
            f"/storage/v1/object/sign/{bucket}/a/b.txt",
            content=json.dumps({"expiresIn": too_long}),
            headers=service_headers(stack) | {"content-type": "application/json"},
        )
        assert refused.status_code == 400 and storage_code(refused)[0] == "400", refused.text
    assert records.faults() == []


def test_object_keys_past_1024_characters_are_invalid_keys(
    http: httpx.Client, stack: LocalSupabase, bucket: str, records: Records
) -> None:
    key = secrets.token_hex(3000)  # 6000 characters that do not compress into the name index
    for headers in (anon_headers(stack), service_headers(stack)):
        upload = http.post(
            f"/storage/v1/object/{bucket}/{key}", content=b"x", headers=headers | {"content-type": "text/plain"}
        )
        assert upload.status_code == 400 and storage_code(upload) == ("400", "InvalidKey"), upload.text[:300]
        read = http.get(f"/storage/v1/object/{bucket}/{key}", headers=headers)
        assert read.status_code == 400 and storage_code(read) == ("400", "InvalidKey")
    copied = http.post(
        "/storage/v1/object/copy",
        json={"bucketId": bucket, "sourceKey": "a/b.txt", "destinationKey": key},
        headers=service_headers(stack),
    )
    assert copied.status_code == 400 and storage_code(copied)[0] == "400", copied.text[:300]
    limit = "k" * 1024
    fits = http.post(
        f"/storage/v1/object/{bucket}/{limit}",
        content=b"x",
        headers=service_headers(stack) | {"content-type": "text/plain"},
    )
    assert fits.status_code == 200, fits.text[:300]
    assert records.faults() == []


def test_a_value_too_large_for_an_index_is_a_400(http: httpx.Client, stack: LocalSupabase, records: Records) -> None:
    person = new_person(stack)
    headers = user_headers(stack, person)
    row = {"user_id": person.id, "name": "big", "storage_path": f"{person.id}/{secrets.token_hex(3000)}/t.jsonl"}
    response = http.post("/rest/v1/datasets", json=row, headers=headers)
    assert response.status_code == 400, response.text[:300]
    assert postgrest_code(response) in ("54000", "23514")  # the unique index's row limit, or a length check
    assert records.faults() == []


def test_out_of_range_and_nul_values_are_400s_in_each_services_shape(
    http: httpx.Client, stack: LocalSupabase, bucket: str, records: Records
) -> None:
    service, big = service_headers(stack), "9" * 25
    for query in (f"page={big}", f"per_page={big}"):
        page = http.get(f"/auth/v1/admin/users?{query}", headers=service)
        assert page.status_code == 400 and "value out of range" in page.json()["msg"], page.text
    email = f"sec-{uuid.uuid4().hex[:12]}@example.test"
    banned = http.post(
        "/auth/v1/admin/users", json={"email": email, "ban_duration": "99999999999999h"}, headers=service
    )
    assert banned.status_code == 400 and "invalid duration" in banned.json()["msg"], banned.text
    nul_metadata = http.post(
        "/auth/v1/admin/users", json={"email": email, "user_metadata": {"a": "\u0000"}}, headers=service
    )
    assert (nul_metadata.status_code, nul_metadata.json()["error_code"]) == (400, "validation_failed")
    signup = {"email": email, "password": "pw-" + secrets.token_urlsafe(12), "data": {"k\u0000": 1}}
    nul_signup = http.post("/auth/v1/signup", json=signup, headers=anon_headers(stack))
    assert (nul_signup.status_code, nul_signup.json()["error_code"]) == (400, "validation_failed")
    person = new_person(stack)
    nul_update = http.put("/auth/v1/user", json={"data": {"x": "\u0000"}}, headers=user_headers(stack, person))
    assert (nul_update.status_code, nul_update.json()["error_code"]) == (400, "validation_failed")
    for field in ("limit", "offset"):
        listed = http.post(f"/storage/v1/object/list/{bucket}", json={"prefix": "", field: 10**20}, headers=service)
        assert listed.status_code == 400 and storage_code(listed) == ("400", "InvalidRequest"), listed.text
    assert records.faults() == []


def _send_raw(url: str, head: str, body: bytes) -> int:
    """Send a request byte for byte (httpx refuses non-ASCII header values) and return the status."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_undecodable_headers_nul_credentials_and_bad_urls_are_not_faults(
    http: httpx.Client, gateway: str, stack: LocalSupabase, bucket: str, records: Records
) -> None:
    auth = f"apikey: {stack.service_role_key}\r\nAuthorization: Bearer {stack.service_role_key}\r\n"
    head = f"POST /storage/v1/object/{bucket}/meta/{uuid.uuid4().hex}.txt HTTP/1.1\r\nHost: x\r\n{auth}"
    status = _send_raw(gateway, head + "Content-Type: text/plain\r\nx-metadata: \u00ff\u00fe(\r\n", b"x")
    assert status == 200  # metadata that is not base64 JSON is dropped, as Storage does
    nul_login = http.post(
        "/auth/v1/token?grant_type=password",
        json={"email": "\u0000@example.test", "password": "x"},
        headers=anon_headers(stack),
    )
    assert nul_login.status_code == 400, nul_login.text
    person = new_person(stack)
    link = http.post(
        "/auth/v1/admin/generate_link?redirect_to=http://[::1",
        json={"type": "recovery", "email": person.email},
        headers=service_headers(stack),
    )
    assert link.status_code == 200 and link.json()["redirect_to"] == "http://127.0.0.1:3000", link.text
    assert records.faults() == []


def test_a_real_fault_is_logged_with_a_bounded_traceback() -> None:
    """A server bug a client can repeat costs at most MAX_CHARS of log per request, however deep its stack."""

    def recurse(depth: int) -> int:
        return recurse(depth + 1) + 1 if depth < 400 else int("not a number")

    try:
        recurse(0)
    except ValueError as error:
        text = describe_fault(error)
    assert len(text) <= MAX_CHARS + 40
    assert text.endswith("ValueError: invalid literal for int() with base 10: 'not a number'")
    assert text.count("in recurse") <= MAX_FRAMES


# -- the fuzz ----------------------------------------------------------------------------------------------------

_PIECES = [*"()!,.:*-\"'\\{}[]@ &=?;%+_/", *"abcdeiklnoqrst0123456789", "or", "and", "not.", "eq.", "in.", "cs.", "is."]
_PIECES += ["->", "->>", "::", "...", "id", "name", "datasets", "user_id", "count()", "\x00", "é", "null", "%00"]
_QUERY_VALUE = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)
_QUERY_KEY = st.sampled_from(
    ["select", "or", "and", "order", "limit", "offset", "id", "name", "columns", "on_conflict"]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["name", "id", "user_id", "p_job_id", "storage_path", "status"]), children, max_size=3
        )
    ),
    max_leaves=10,
)
_KEY = st.text(st.sampled_from([*"abcXYZ019/._-!*'() &$=@;:+,?%~#\\", "\x00", "é"]), max_size=40)


@FUZZ
@given(
    table=st.sampled_from(["datasets", "training_jobs", "metrics_points", "rpc/ingest_metrics", "missing"]),
    method=st.sampled_from(["GET", "POST", "PATCH", "DELETE"]),
    query=st.lists(st.tuples(_QUERY_KEY, _QUERY_VALUE), max_size=4),
    body=_JSON,
    prefer=st.sampled_from(
        ["", "return=representation", "count=exact", "count=planned", "resolution=merge-duplicates"]
    ),
    range_header=st.sampled_from(["", "0-1", "5-2", "a-b", "0-99999999999999999999999"]),
)
def test_fuzzed_rest_requests_never_500(
    http: httpx.Client,
    stack: LocalSupabase,
    records: Records,
    table: str,
    method: str,
    query: list[tuple[str, str]],
    body: Any,
    prefer: str,
    range_header: str,
) -> None:
    headers = anon_headers(stack) | {"Prefer": prefer, "Range": range_header, "content-type": "application/json"}
    content = json.dumps(body) if method in ("POST", "PATCH") else None
    params = httpx.QueryParams(query)
    response = http.request(method, f"/rest/v1/{table}", params=params, headers=headers, content=content)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert records.faults() == []


@FUZZ
@given(
    operation=st.sampled_from(["get", "info", "sign", "signed", "upload", "list", "remove", "copy", "tus"]),
    key=_KEY,
    body=_JSON,
)
def test_fuzzed_storage_requests_never_500(
    http: httpx.Client, stack: LocalSupabase, bucket: str, records: Records, operation: str, key: str, body: Any
) -> None:
    path, headers = quote(key, safe="/"), anon_headers(stack)
    encoded = json.dumps(body)
    json_headers = headers | {"content-type": "application/json"}
    if operation == "get":
        response = http.get(f"/storage/v1/object/{bucket}/{path}", headers=headers)
    elif operation == "info":
        response = http.get(f"/storage/v1/object/info/{bucket}/{path}", headers=headers)
    elif operation == "sign":
        response = http.post(f"/storage/v1/object/sign/{bucket}/{path}", content=encoded, headers=json_headers)
    elif operation == "signed":
        response = http.get(f"/storage/v1/object/sign/{bucket}/{path}", params={"token": key})
    elif operation == "upload":
        response = http.post(
            f"/storage/v1/object/{bucket}/{path}", content=b"x", headers=headers | {"content-type": "text/plain"}
        )
    elif operation == "list":
        response = http.post(f"/storage/v1/object/list/{bucket}", content=encoded, headers=json_headers)
    elif operation == "remove":
        response = http.request("DELETE", f"/storage/v1/object/{bucket}", content=encoded, headers=json_headers)
    elif operation == "copy":
        copy = {"bucketId": bucket, "sourceKey": key, "destinationKey": key + "x"}
        response = http.post("/storage/v1/object/copy", json=body if isinstance(body, dict) else copy, headers=headers)
    else:
        values = {"bucketName": bucket, "objectName": key, "contentType": key[:8]}
        metadata = ",".join(f"{name} {base64.b64encode(value.encode()).decode()}" for name, value in values.items())
        tus_headers = {"Tus-Resumable": "1.0.0", "Upload-Length": str(len(key)), "Upload-Metadata": metadata}
        response = http.post("/storage/v1/upload/resumable", headers=headers | tus_headers)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert records.faults() == []


@FUZZ
@given(
    path=st.sampled_from(["/signup", "/token?grant_type=password", "/token?grant_type=refresh_token", "/user", "/otp"]),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    body=_JSON,
)
def test_fuzzed_auth_requests_never_500(
    http: httpx.Client, stack: LocalSupabase, records: Records, path: str, method: str, body: Any
) -> None:
    response = http.request(method, f"/auth/v1{path}", content=json.dumps(body), headers=anon_headers(stack))
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert records.faults() == []
