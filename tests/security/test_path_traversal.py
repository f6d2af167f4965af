"""``..``, encoded slashes, NUL bytes and absolute paths in every path parameter of the gateway.

Each request is sent byte for byte over a socket (an HTTP client would normalise ``..`` away) with the
service-role key, the most powerful credential, and must get a clean 4xx: a JSON error body where the real
service sends one (the tus endpoints answer in plain text, GoTrue's router 404 is Go's plain text, and HEAD
has no body, as in Supabase). A canary file planted next to the stack's directories must never come back,
and no file named by a payload may appear outside the object store. Storage keeps bytes under
server-generated version UUIDs (local_supabase/gateway/storage/_disk.py), so these tests pin that a name
never becomes a path, and that the names themselves are refused before anything runs.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lora_pipeline import AsyncLoraPipeline, Role
from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.server import create_dataset_download_app

from .conftest import DATASETS, MODELS, RawResponse, raw_request, service_headers

MARKER = f"lp-traversal-{uuid.uuid4().hex[:12]}"
"""Every payload that could name a file names this one; it must appear nowhere."""
CANARY = f"canary-{uuid.uuid4().hex}"
CANARY_TEXT = f"secret canary {uuid.uuid4().hex}"

PAYLOADS = {
    "dotdot": "..",
    "dotdot-dotdot": "../..",
    "encoded-slashes": f"..%2F..%2F..%2F{CANARY}",
    "encoded-dots": "%2e%2e",
    "encoded-dots-and-slashes": f"%2e%2e%2f%2e%2e%2f%2e%2e%2f{CANARY}",
    "double-encoded": "%252e%252e%252f",
    "backslashes": f"..%5C..%5C{CANARY}",
    "nul": "%00",
    "nul-inside": "a%00b",
    "dotdot-nul": "..%00",
    "absolute-encoded": "%2Fetc%2Fpasswd",
    "absolute": "/etc/passwd",
    "deep-climb": f"x/..%2F..%2F..%2F..%2F..%2F..%2Ftmp%2F{MARKER}",
}

TARGETS: dict[str, tuple[str, str]] = {
    "storage object": ("GET", "/storage/v1/object/lora-datasets/{p}"),
    "storage object bucket": ("GET", "/storage/v1/object/{p}/x.jsonl"),
    "storage authenticated object": ("GET", "/storage/v1/object/authenticated/lora-datasets/{p}"),
    "storage public object": ("GET", "/storage/v1/object/public/lora-datasets/{p}"),
    "storage object info": ("GET", "/storage/v1/object/info/lora-datasets/{p}"),
    "storage upload": ("POST", "/storage/v1/object/lora-models/{p}"),
    "storage upload bucket": ("POST", "/storage/v1/object/{p}/" + MARKER),
    "storage update": ("PUT", "/storage/v1/object/lora-models/{p}"),
    "storage delete": ("DELETE", "/storage/v1/object/lora-datasets/{p}"),
    "storage bulk delete bucket": ("DELETE", "/storage/v1/object/{p}"),
    "storage sign": ("POST", "/storage/v1/object/sign/lora-datasets/{p}"),
    "storage sign many bucket": ("POST", "/storage/v1/object/sign/{p}"),
    "storage signed download": ("GET", "/storage/v1/object/sign/lora-datasets/{p}?token=x"),
    "storage upload sign": ("POST", "/storage/v1/object/upload/sign/lora-models/{p}"),
    "storage signed upload": ("PUT", "/storage/v1/object/upload/sign/lora-models/{p}?token=x"),
    "storage list bucket": ("POST", "/storage/v1/object/list/{p}"),
    "storage bucket get": ("GET", "/storage/v1/bucket/{p}"),
    "storage bucket update": ("PUT", "/storage/v1/bucket/{p}"),
    "storage bucket delete": ("DELETE", "/storage/v1/bucket/{p}"),
    "storage bucket empty": ("POST", "/storage/v1/bucket/{p}/empty"),
    "tus upload status": ("HEAD", "/storage/v1/upload/resumable/{p}"),
    "tus upload append": ("PATCH", "/storage/v1/upload/resumable/{p}"),
    "tus upload abort": ("DELETE", "/storage/v1/upload/resumable/{p}"),
    "rest table": ("GET", "/rest/v1/{p}"),
    "rest table write": ("POST", "/rest/v1/{p}"),
    "rest rpc": ("POST", "/rest/v1/rpc/{p}"),
    "auth admin user": ("GET", "/auth/v1/admin/users/{p}"),
    "auth admin user delete": ("DELETE", "/auth/v1/admin/users/{p}"),
}


@pytest.fixture
def canaries(stack: LocalSupabase) -> Iterator[list[Path]]:
    """The same secret file in every directory a climb out of the object store could reach first."""
    storage_root = stack.config.storage_root
    places = [storage_root, storage_root.parent, storage_root / "objects", Path(tempfile.gettempdir())]
    planted = []
    for place in places:
        place.mkdir(parents=True, exist_ok=True)
        path = place / CANARY
        path.write_text(CANARY_TEXT)
        planted.append(path)
    yield planted
    for path in planted:
        path.unlink(missing_ok=True)


def _request_for(stack: LocalSupabase, method: str, target: str) -> tuple[dict[str, str], bytes]:
    """The service role's headers and a plausible body for ``method`` on ``target``."""
    headers = service_headers(stack)
    body = b""
    if "/upload/resumable" in target:
        headers |= {"Tus-Resumable": "1.0.0"}
        if method == "PATCH":
            headers |= {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
            body = b"x"
    elif method in ("POST", "PUT"):
        if target.startswith("/storage/v1/object/lora-models") or "/upload/sign/" in target:
            headers["Content-Type"] = "application/octet-stream"
            body = MARKER.encode()
        else:
            headers["Content-Type"] = "application/json"
            body = b'{"expiresIn": 60, "public": true, "prefix": "", "paths": ["x"], "name": "n"}'
    elif method == "DELETE" and target.count("/") == 4 and target.startswith("/storage/v1/object/"):
        headers["Content-Type"] = "application/json"
        body = b'{"prefixes": ["x"]}'
    return headers, body


def assert_clean_refusal(response: RawResponse, method: str, target: str) -> None:
    assert 400 <= response.status < 500, (response.status, response.body[:300])
    assert CANARY_TEXT.encode() not in response.body
    if method == "HEAD":
        assert response.body == b""
        return
    content_type = response.headers.get("content-type", "")
    if "/upload/resumable" in target and content_type.startswith("text/plain"):
        assert response.body.strip(), "tus errors carry their message as text"
        return
    if target.startswith("/auth/v1") and content_type.startswith("text/plain"):
        assert response.status == 404 and response.body == b"404 page not found\n"
        return
    assert content_type.startswith("application/json"), content_type
    body = response.json()
    assert isinstance(body, dict) and (body.get("message") or body.get("msg")), body


def no_marker_file_anywhere(stack: LocalSupabase) -> list[str]:
    """Files named by a payload outside the object store's own UUID-named files."""
    found = []
    roots = [stack.root, Path(tempfile.gettempdir()), Path.cwd(), Path("/etc")]
    for root in roots:
        if (root / MARKER).exists():
            found.append(str(root / MARKER))
    for directory, _, files in os.walk(stack.config.storage_root):
        found += [os.path.join(directory, name) for name in files if MARKER in name or name.endswith("passwd")]
    return found


CELLS = [(t, p) for t in TARGETS for p in PAYLOADS]


@pytest.mark.parametrize(("target", "payload"), CELLS, ids=[f"{t}-{p}" for t, p in CELLS])
def test_a_hostile_path_parameter_is_refused_cleanly(
    stack: LocalSupabase, canaries: list[Path], target: str, payload: str
) -> None:
    method, template = TARGETS[target]
    url = template.format(p=PAYLOADS[payload])
    headers, body = _request_for(stack, method, url)
    response = raw_request(stack, method, url, headers, body)
    if target == "storage list bucket" and response.status == 200:
        # Listing is a search by prefix in a bucket that does not exist, not a path: nothing to read.
        assert response.json() == []
    else:
        assert_clean_refusal(response, method, url)
    assert no_marker_file_anywhere(stack) == []
    assert all(path.read_text() == CANARY_TEXT for path in canaries)


BODY_NAMES = {
    "dotdot": "..",
    "climb": f"../../../../tmp/{MARKER}",
    "inner-dotdot": f"a/../{MARKER}",
    "absolute": f"/tmp/{MARKER}",
    "nul": "a\x00b",
    "only-nul": "\x00",
    "backslashes": f"..\\..\\{MARKER}",
    "empty-segment": f"a//{MARKER}",
    "trailing-dotdot": "x/a.jsonl/..",
}


def _tus_metadata(bucket: str, name: str) -> str:
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in (("bucketName", bucket), ("objectName", name))
    )


BODY_TARGETS: dict[str, Any] = {
    "copy destination": lambda http, n: http.post(
        "/storage/v1/object/copy", json={"bucketId": DATASETS, "sourceKey": "x/a.jsonl", "destinationKey": n}
    ),
    "copy source": lambda http, n: http.post(
        "/storage/v1/object/copy", json={"bucketId": DATASETS, "sourceKey": n, "destinationKey": f"x/{MARKER}"}
    ),
    "copy destination bucket": lambda http, n: http.post(
        "/storage/v1/object/copy",
        json={"bucketId": DATASETS, "sourceKey": "x/a.jsonl", "destinationBucket": n, "destinationKey": "x/b"},
    ),
    "move destination": lambda http, n: http.post(
        "/storage/v1/object/move", json={"bucketId": DATASETS, "sourceKey": "x/a.jsonl", "destinationKey": n}
    ),
    "move source bucket": lambda http, n: http.post(
        "/storage/v1/object/move", json={"bucketId": n, "sourceKey": "x/a.jsonl", "destinationKey": "x/b"}
    ),
    "bucket name": lambda http, n: http.post("/storage/v1/bucket", json={"name": n}),
    "bucket id": lambda http, n: http.post("/storage/v1/bucket", json={"id": n, "name": "fine-name"}),
    "tus object name": lambda http, n: http.post(
        "/storage/v1/upload/resumable",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": _tus_metadata(MODELS, n)},
    ),
    "tus bucket name": lambda http, n: http.post(
        "/storage/v1/upload/resumable",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": _tus_metadata(n, "x/a.bin")},
    ),
}
"""Names carried in bodies and headers rather than the URL: refused like URL names."""

SEARCHES: dict[str, Any] = {
    "list prefix": lambda http, n: http.post(f"/storage/v1/object/list/{DATASETS}", json={"prefix": n}),
    "bulk sign paths": lambda http, n: http.post(
        f"/storage/v1/object/sign/{DATASETS}", json={"expiresIn": 60, "paths": [n]}
    ),
    "bulk delete prefixes": lambda http, n: http.request(
        "DELETE", f"/storage/v1/object/{DATASETS}", json={"prefixes": [n]}
    ),
}
"""Names used only to match existing rows: an odd one matches nothing (or is refused), it never escapes."""


@pytest.fixture(scope="module")
def _service_http(stack: LocalSupabase) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, headers=service_headers(stack), timeout=30) as client:
        yield client


@pytest.fixture
def storage_http(_service_http: httpx.Client, module_cache: dict[str, Any]) -> httpx.Client:
    """The service role's client, with one object ``x/a.jsonl`` in ``lora-datasets`` to copy, move and find."""
    if "stored" not in module_cache:
        stored = _service_http.post(
            f"/storage/v1/object/{DATASETS}/x/a.jsonl", headers={"content-type": "application/jsonl"}, content=b"{}"
        )
        assert stored.status_code == 200, stored.text
        module_cache["stored"] = True
    return _service_http


BODY_CELLS = [(t, n) for t in BODY_TARGETS for n in BODY_NAMES]


@pytest.mark.parametrize(("target", "name"), BODY_CELLS, ids=[f"{t}-{n}" for t, n in BODY_CELLS])
def test_a_hostile_name_in_a_body_is_refused_cleanly(
    stack: LocalSupabase, storage_http: httpx.Client, target: str, name: str
) -> None:
    response = BODY_TARGETS[target](storage_http, BODY_NAMES[name])
    status = response.status_code
    if target.startswith("tus"):
        assert 400 <= status < 500 and response.text.strip(), response.text
    else:
        assert status == 400, response.text
        assert 400 <= int(response.json()["statusCode"]) < 500, response.text
    assert no_marker_file_anywhere(stack) == []


SEARCH_CELLS = [(t, n) for t in SEARCHES for n in BODY_NAMES]


@pytest.mark.parametrize(("target", "name"), SEARCH_CELLS, ids=[f"{t}-{n}" for t, n in SEARCH_CELLS])
def test_a_hostile_name_in_a_search_matches_nothing(
    stack: LocalSupabase, storage_http: httpx.Client, target: str, name: str
) -> None:
    response = SEARCHES[target](storage_http, BODY_NAMES[name])
    if "\x00" in BODY_NAMES[name]:
        assert response.status_code == 400 and response.json()["statusCode"] == "400", response.text
        assert response.json()["code"] == "InvalidParameter"
        return
    assert response.status_code == 200, response.text
    found = response.json()
    assert found == [] or all(entry.get("signedURL") is None for entry in found), found
    assert storage_http.get(f"/storage/v1/object/{DATASETS}/x/a.jsonl").content == b"{}"


@pytest.mark.parametrize("value", ["%00", "a%00b"])
@pytest.mark.parametrize(
    "target",
    [
        "/rest/v1/datasets?name=eq.{v}",
        "/rest/v1/datasets?or=(name.eq.{v})",
        "/rest/v1/rpc/pod_get_job?job_id=00000000-0000-0000-0000-000000000000&job_token={v}",
        "/rest/v1/rpc/redeem_download_token?token={v}",
    ],
)
def test_nul_bytes_in_query_values_are_a_client_error(stack: LocalSupabase, target: str, value: str) -> None:
    """Postgres cannot store NUL in text; PostgREST answers that as the 400 Postgres raises (22021), not as a
    503 that would make clients retry what can never succeed."""
    response = raw_request(stack, "GET", target.format(v=value), service_headers(stack))
    assert response.status == 400, response.body
    assert response.json()["code"] == "22021"


@pytest.mark.parametrize("token", ["%00", "a%00b", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "%2Fetc%2Fpasswd", "x%5C..%5Cy"])
def test_the_download_app_refuses_hostile_tokens_cleanly(stack: LocalSupabase, token: str) -> None:
    async def ask() -> list[httpx.Response]:
        client = AsyncLoraPipeline(url=stack.url, anon_key=stack.anon_key, role=Role.ANON)
        app = create_dataset_download_app(client)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as web:
            answers = [
                await web.get(f"/datasets/download?token={token}"),
                await web.get(f"/datasets/download/{token}?token=x"),
                await web.get(f"/datasets/{token}/download?token=x"),
            ]
        await client.close()
        return answers

    by_query, *by_path = asyncio.run(ask())
    if "%00" in token:
        assert by_query.status_code == 400
        assert by_query.json() == {"error": "bad_request", "message": "malformed download token"}
    else:
        assert by_query.status_code == 404 and by_query.json()["error"] == "LPT01"
    assert [r.status_code for r in by_path] == [404, 404]


def test_the_gateway_is_healthy_after_all_that(stack: LocalSupabase) -> None:
    assert httpx.get(stack.url + "/").json() == {"status": "ok"}
    anon = httpx.get(stack.url + "/rest/v1/datasets", headers={"apikey": stack.anon_key})
    assert anon.status_code == 401 and anon.json()["code"] == "42501"
