"""Every storage3 and supabase-auth method reaches the handler meant for it, and what the stack does not serve
answers in its service's error shape so the client raises its typed error (issue 16 §1).

Each method runs for real (sync and async clients) through an httpx client that records the requests it
sends; each recorded request is then resolved against the gateway's own route tables (routes are named after
their handlers) and must land on the expected handler: no list, sign or info call may reach the upload or
download catch-alls. A sweep of paths under Storage's route words checks the same for requests no client
method sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.routing import Match, Mount
from storage3.exceptions import StorageApiError
from supabase_auth.errors import AuthApiError
from tests.conformance.test_storage_support import StorageWorld, world

from lora_pipeline.local_supabase.gateway.app import create_app
from lora_pipeline.local_supabase.gateway.storage._routes import ALL_METHODS, RESERVED_WORDS

__all__ = ["world"]

PASSWORD = "route-table-pass-123"
CATCH_ALLS = {"get_object", "upload_object", "delete_object", "remove_objects"}


class Recorder:
    """The (method, path) of every request a client sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def take(self) -> list[tuple[str, str]]:
        sent, self.sent = self.sent, []
        return sent

    def sync_hook(self, request: httpx.Request) -> None:
        self.sent.append((request.method, request.url.path))

    async def async_hook(self, request: httpx.Request) -> None:
        self.sent.append((request.method, request.url.path))


class Gateway:
    """The gateway's route tables, resolved the way its routers match (built from the stack's config)."""

    def __init__(self, config: Any) -> None:
        app = create_app(config)
        self.mounts = {route.path: route.app for route in app.routes if isinstance(route, Mount)}

    def resolve(self, method: str, path: str) -> str:
        """``service:route name`` of the route that takes ``method path``."""
        for prefix, service in self.mounts.items():
            if path.startswith(prefix + "/"):
                scope = {"type": "http", "method": method, "path": path[len(prefix) :], "root_path": ""}
                for route in service.router.routes:
                    if route.matches(scope)[0] == Match.FULL:
                        return f"{prefix.split('/')[1]}:{route.name}"
                return f"{prefix.split('/')[1]}:<none>"
        return "gateway:no_route"


@pytest.fixture(scope="module")
def gateway(target: Any) -> Gateway:
    if not target.is_local:
        pytest.skip("reads the embedded gateway's route tables")
    return Gateway(target.stack.config)


def _client(sb: Any, recorder: Recorder, key: str) -> Any:
    from supabase import AsyncClient, Client
    from supabase.lib.client_options import AsyncClientOptions, SyncClientOptions

    if sb.flavour == "sync":
        http = httpx.Client(event_hooks={"request": [recorder.sync_hook]}, follow_redirects=True)
        return Client(sb.target.url, key, SyncClientOptions(httpx_client=http, auto_refresh_token=False))
    async_http = httpx.AsyncClient(event_hooks={"request": [recorder.async_hook]}, follow_redirects=True)
    options = AsyncClientOptions(httpx_client=async_http, auto_refresh_token=False)
    return AsyncClient(sb.target.url, key, options)


def _handled(sb: Any, gateway: Gateway, recorder: Recorder, call: Callable[[], Any]) -> list[str]:
    """Run ``call`` and resolve the requests it sent."""
    sb.await_(call())
    return [gateway.resolve(method, path) for method, path in recorder.take()]


def _refused(sb: Any, gateway: Gateway, recorder: Recorder, call: Callable[[], Any], error: type) -> list[str]:
    with pytest.raises(error):
        sb.await_(call())
    return [gateway.resolve(method, path) for method, path in recorder.take()]


def test_every_storage3_method_reaches_its_own_handler(sb: Any, gateway: Gateway, world: StorageWorld) -> None:
    recorder = Recorder()
    client = _client(sb, recorder, sb.target.service_role_key)
    storage = client.storage
    bucket_id = f"conf-routes-{uuid.uuid4().hex[:8]}"
    world.buckets.append(bucket_id)
    files = storage.from_(bucket_id)
    expected: list[tuple[Callable[[], Any], str]] = [
        (lambda: storage.create_bucket(bucket_id), "create_bucket"),
        (lambda: storage.list_buckets(), "list_buckets"),
        (lambda: storage.get_bucket(bucket_id), "get_bucket"),
        (lambda: storage.update_bucket(bucket_id, {"public": False}), "update_bucket"),
        (lambda: files.upload("a/b.txt", b"b"), "upload_object"),
        (lambda: files.update("a/b.txt", b"c"), "upload_object"),
        (lambda: files.download("a/b.txt"), "get_object"),
        (lambda: files.info("a/b.txt"), "get_object_info"),
        (lambda: files.exists("a/b.txt"), "get_object_info"),
        (lambda: files.list("a"), "list_objects"),
        (lambda: files.list_v2({"prefix": "a/"}), "list_objects_v2"),
        (lambda: files.copy("a/b.txt", "a/c.txt"), "copy_object"),
        (lambda: files.move("a/c.txt", "a/d.txt"), "move_object"),
        (lambda: files.create_signed_url("a/b.txt", 60), "sign_object_url"),
        (lambda: files.create_signed_urls(["a/b.txt"], 60), "sign_object_urls"),
        (lambda: files.create_signed_upload_url("a/e.txt"), "sign_upload_url"),
        (lambda: files.remove(["a/d.txt"]), "remove_objects"),
        (lambda: storage.empty_bucket(bucket_id), "empty_bucket"),
        (lambda: storage.delete_bucket(bucket_id), "delete_bucket"),
    ]
    for call, handler in expected:
        if handler == "empty_bucket":
            signed = sb.await_(files.create_signed_upload_url("a/f.txt"))
            recorder.take()
            uploaded = _handled(
                sb, gateway, recorder, lambda s=signed: files.upload_to_signed_url(s["path"], s["token"], b"f")
            )
            assert uploaded == ["storage:upload_to_signed_url"]
            url = sb.await_(files.create_signed_url("a/b.txt", 60))["signedURL"]
            recorder.take()
            assert gateway.resolve("GET", httpx.URL(url).path) == "storage:get_signed_object"
        assert _handled(sb, gateway, recorder, call) == [f"storage:{handler}"], handler
    public_url = sb.await_(files.get_public_url("a/b.txt"))
    assert gateway.resolve("GET", httpx.URL(public_url).path) == "storage:get_public_object"


def test_storage_features_the_stack_lacks_raise_storage_errors(sb: Any, gateway: Gateway) -> None:
    recorder = Recorder()
    storage = _client(sb, recorder, sb.target.service_role_key).storage
    transform = {"transform": {"width": 10}}
    calls = [
        lambda: storage.from_("lora-datasets").download("x.png", transform),
        lambda: storage.analytics().list(),
        lambda: storage.vectors().list_buckets(),
    ]
    for call in calls:
        assert _refused(sb, gateway, recorder, call, StorageApiError) == ["storage:route_not_found"]


def test_no_path_under_a_storage_route_word_reaches_an_object_catch_all(gateway: Gateway) -> None:
    for word in RESERVED_WORDS:
        for tail in ("x", "x/y", "x/y/z.txt", "sign/x/y"):
            for method in ALL_METHODS:
                handler = gateway.resolve(method, f"/storage/v1/object/{word}/{tail}")
                assert handler.split(":")[1] not in CATCH_ALLS, (method, word, tail, handler)
    for method in ALL_METHODS:
        assert gateway.resolve(method, "/storage/v1/no/such/route") == "storage:route_not_found"


def test_every_supabase_auth_method_reaches_its_own_handler(sb: Any, gateway: Gateway) -> None:
    recorder = Recorder()
    admin_client = _client(sb, recorder, sb.target.service_role_key)
    admin = admin_client.auth.admin
    email = f"routes-{uuid.uuid4().hex[:10]}@example.test"
    created = sb.await_(admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}))
    user_id = created.user.id
    assert [gateway.resolve(m, p) for m, p in recorder.take()] == ["auth:admin.create_user"]
    admin_calls: list[tuple[Callable[[], Any], str]] = [
        (lambda: admin.list_users(), "admin.list_users_endpoint"),
        (lambda: admin.get_user_by_id(user_id), "admin.get_user"),
        (lambda: admin.update_user_by_id(user_id, {"user_metadata": {"a": 1}}), "admin.update_user_endpoint"),
        (lambda: admin.generate_link({"type": "recovery", "email": email}), "links.generate_link"),
    ]
    for call, handler in admin_calls:
        assert _handled(sb, gateway, recorder, call) == [f"auth:{handler}"], handler
    auth = _client(sb, recorder, sb.target.anon_key).auth
    user_calls: list[tuple[Callable[[], Any], str]] = [
        (lambda: auth.sign_up({"email": f"x{email}", "password": PASSWORD}), "grants.signup"),
        (lambda: auth.sign_in_with_password({"email": email, "password": PASSWORD}), "grants.token"),
        (lambda: auth.get_user(), "account.get_user"),
        (lambda: auth.update_user({"data": {"b": 2}}), "account.update_user_endpoint"),
        (lambda: auth.refresh_session(), "grants.token"),
        (lambda: auth.sign_out(), "account.logout"),
    ]
    for call, handler in user_calls:
        assert f"auth:{handler}" in _handled(sb, gateway, recorder, call), handler
    assert _handled(sb, gateway, recorder, lambda: admin.delete_user(user_id)) == ["auth:admin.delete_user_endpoint"]


def test_auth_endpoints_the_stack_lacks_raise_auth_api_errors(sb: Any, gateway: Gateway) -> None:
    recorder = Recorder()
    auth = _client(sb, recorder, sb.target.anon_key).auth
    admin = _client(sb, recorder, sb.target.service_role_key).auth.admin
    email = f"missing-{uuid.uuid4().hex[:10]}@example.test"
    calls = [
        lambda: auth.sign_in_with_otp({"email": email}),
        lambda: auth.reset_password_for_email(email),
        lambda: auth.verify_otp({"email": email, "token": "123456", "type": "email"}),
        lambda: auth.resend({"type": "signup", "email": email}),
        lambda: auth.sign_in_with_sso({"domain": "example.test"}),
        lambda: auth.sign_in_anonymously(),
        lambda: admin.invite_user_by_email(email),
        lambda: admin.mfa.list_factors({"user_id": str(uuid.uuid4())}),
    ]
    for call in calls:
        with pytest.raises(AuthApiError) as refused:
            sb.await_(call())
        sent = recorder.take()
        assert len(sent) == 1, sent
        handler = gateway.resolve(*sent[0])
        if handler == "auth:not_implemented":
            assert (refused.value.status, refused.value.code) == (404, "not_found"), sent
            assert "not implemented by the local stack" in refused.value.message
        else:  # sign_in_anonymously is /signup without credentials: GoTrue's own refusal
            assert (handler, refused.value.code) == ("auth:grants.signup", "anonymous_provider_disabled")


def test_unserved_gateway_paths_answer_in_json(target: Any, gateway: Gateway) -> None:
    headers = {"apikey": target.anon_key, "Authorization": f"Bearer {target.anon_key}"}
    with httpx.Client(base_url=target.url, headers=headers, timeout=30) as http:
        functions = http.post("/functions/v1/hello", json={})
        assert (functions.status_code, functions.json()) == (404, {"message": "no Route matched with those values"})
        auth = http.get("/auth/v1/factors")
        assert auth.status_code == 404 and auth.json()["error_code"] == "not_found"
        wrong_method = http.delete("/auth/v1/signup")
        assert wrong_method.status_code == 405 and wrong_method.json()["error_code"] == "method_not_allowed"
        storage = http.patch("/storage/v1/object/lora-datasets/x.txt")
        assert storage.status_code == 404 and storage.json()["statusCode"] == 404
        rest = http.get("/rest/v1/a/b/c")
        assert rest.status_code == 404 and rest.json()["code"] == "PGRST125"
