"""No secret shows up where it should not: a real job end to end, then everything it left behind is scanned.

Secrets: the service-role key, the JWT secret, the database password of the gateway, users' passwords (and a
wrong one tried), users' access and refresh tokens, every job token, every dataset download token, the RunPod
API key, and a forged service key. Places: every log record of the ``lora_pipeline`` loggers at DEBUG (and of
every other logger the run touched), the gateway's own log, every row of the project's tables (job events,
notifications, errors, progress, metrics ``extra``...) and the auth and storage rows, the files the pod
uploaded, the pods' logs, the text and repr of every error raised on the way, the reprs of clients, settings
and configuration objects, and the pods' environments: LocalBackend's pod gets only its own job's
credentials; a RunPod pod gets exactly the documented variables (tests/integration/jobs/test_jobs_runpod.py)
plus what RunPod itself adds, with a pod-scoped RunPod key instead of the account's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from lora_pipeline import (
    AsyncLoraPipeline,
    LoraPipeline,
    LoraPipelineError,
    Role,
    Settings,
    TokenAlreadyUsed,
    TokenRevoked,
)
from lora_pipeline.backends.local import LocalBackend
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.pod import PodClient
from lora_pipeline.server import create_dataset_download_app
from lora_pipeline.types.jobs import JobStatus

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "support_chat.jsonl"
DOCUMENTED_ENV = {
    "LORA_JOB_ID",
    "LORA_JOB_TOKEN",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "LORA_BOOTSTRAP_B64",
    "LORA_WHEEL_BUCKET",
    "LORA_WHEEL_OBJECT",
    "LORA_WHEEL_SHA256",
    "LORA_MAX_RUNTIME_SECONDS",
}
RUNPOD_ADDS = {"RUNPOD_POD_ID", "RUNPOD_API_KEY", "RUNPOD_GPU_COUNT", "RUNPOD_POD_HOSTNAME", "PUBLIC_KEY"}
FAKE_ONLY = {"RUNPOD_API_BASE_URL"}
"""The fake adds its own address so a simulated container can reach it; a real pod does not get it."""


class Secrets:
    """Named secret values; ``found_in(text)`` lists the names of those that appear in ``text``."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, name: str, value: str | None) -> None:
        if value:
            assert len(value) >= 8, f"{name} is too short to scan for reliably"
            self.values[name] = value

    def found_in(self, text: str, *, allowed: tuple[str, ...] = ()) -> list[str]:
        return sorted(name for name, value in self.values.items() if value in text and name not in allowed)


def _error_text(error: BaseException) -> str:
    """What a traceback or a log of this error would show: str and repr of it and of every cause."""
    parts, seen = [], 0
    current: BaseException | None = error
    while current is not None and seen < 10:
        parts += [str(current), repr(current), repr(getattr(current, "args", ()))]
        if isinstance(current, LoraPipelineError):
            parts.append(repr(vars(current)))
        current, seen = current.__cause__ or current.__context__, seen + 1
    return "\n".join(parts)


def _record_text(record: logging.LogRecord) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return formatter.format(record) + repr(record.args) + (record.exc_text or "") + repr(record.__dict__)


def _dump_database(stack: LocalSupabase) -> str:
    tables = [
        "datasets",
        "dataset_download_tokens",
        "training_jobs",
        "job_events",
        "metrics_points",
        "model_artifacts",
        "cost_records",
        "notifications",
        "model_baselines",
        "validation_results",
    ]
    with stack.connect() as conn:
        rows = [str(conn.execute(f"select json_agg(t) from public.{t} t").fetchone()) for t in tables]
        # auth.refresh_tokens keeps refresh tokens as GoTrue does (that table is how they are checked).
        rows.append(str(conn.execute("select json_agg(t) from auth.users t").fetchone()))
        rows.append(str(conn.execute("select json_agg(t) from storage.objects t").fetchone()))
        rows.append(str(conn.execute("select json_agg(t) from storage.buckets t").fetchone()))
    return "\n".join(rows)


def _wait(lp: LoraPipeline, job_id: str, backend: Any) -> Any:
    return lp.jobs.wait_for_completion(job_id, backend=backend, poll_interval=0.2, timeout=90, progress=None)


def test_no_secret_leaks_from_a_real_job(
    local_supabase: LocalSupabase,
    fake_runpod: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = local_supabase
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="lora_pipeline")
    gateway_log = stack.root / "gateway.log"
    log_offset = gateway_log.stat().st_size if gateway_log.exists() else 0
    found = Secrets()
    found.add("service role key", stack.service_role_key)
    found.add("JWT secret", stack.jwt_secret)
    found.add("gateway database password", httpx.URL(stack.authenticator_db_url).password)
    found.add("RunPod API key", fake_runpod.api_key)
    password = "pw-" + secrets.token_urlsafe(16)
    user = stack.create_user(f"scan-{uuid.uuid4().hex[:8]}@example.test", password)
    found.add("user password", password)
    found.add("user access token", user.access_token)
    found.add("user refresh token", user.refresh_token)
    # The parent's environment holds every key; none of it may reach a pod.
    for name, value in {
        "SUPABASE_SERVICE_ROLE_KEY": stack.service_role_key,
        "LORA_PIPELINE_SERVICE_ROLE_KEY": stack.service_role_key,
        "RUNPOD_API_KEY": fake_runpod.api_key,
        "LORA_PIPELINE_ACCESS_TOKEN": user.access_token,
        "SUPABASE_JWT_SECRET": stack.jwt_secret,
    }.items():
        monkeypatch.setenv(name, value)
    errors: list[BaseException] = []
    reprs: list[str] = []

    lp = stack.client(user=user)
    service, anon = stack.client(), stack.client(role=Role.ANON)
    dataset = lp.datasets.upload(SAMPLE, name="scan", progress=None)

    # 1. A real job on LocalBackend: the pod program trains (selftest), reports and uploads its adapter.
    local = LocalBackend(
        work_dir=tmp_path / "pods", extra_env={"LORA_TRAINER": "selftest", "LORA_HEARTBEAT_SECONDS": "0.5"}
    )
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", name="scan").id, backend=local)
    handle = local.handle_for(job.pod_id)
    assert handle is not None
    pod_env = local.environment(handle)
    found.add("job token", pod_env["LORA_JOB_TOKEN"])
    job = _wait(lp, job.id, local)
    assert job.status is JobStatus.SUCCEEDED, local.logs(handle)

    # 2. The job token after the end, the wrong password, a forged key: errors that carry secrets in flight.
    with PodClient(stack.url, stack.anon_key, job.id, pod_env["LORA_JOB_TOKEN"], max_retries=0) as pod:
        reprs.append(repr(pod))
        with pytest.raises(LoraPipelineError) as ended:
            pod.heartbeat()
        errors.append(ended.value)
    wrong_password = "wrong-" + secrets.token_urlsafe(12)
    found.add("wrong password", wrong_password)
    with pytest.raises(LoraPipelineError) as refused:
        stack.sign_in(user.email, wrong_password)
    errors.append(refused.value)
    nul_password = "nul-" + secrets.token_urlsafe(12)
    found.add("password with a NUL byte", nul_password)
    odd = httpx.post(
        f"{stack.url}/auth/v1/token",
        params={"grant_type": "password"},
        headers={"apikey": stack.anon_key},
        json={"email": user.email, "password": "\x00" + nul_password},
    )
    assert odd.status_code >= 400  # whatever GoTrue's answer, the gateway log below must not hold the password
    forged = jwt.encode({"role": "service_role", "iss": "supabase"}, "not-the-secret-" * 4, algorithm="HS256")
    found.add("forged service key", forged)
    intruder = LoraPipeline(url=stack.url, anon_key=stack.anon_key, service_role_key=forged, role=Role.SERVICE)
    reprs.append(repr(intruder))
    with pytest.raises(LoraPipelineError) as forged_error:
        intruder.datasets.list()
    errors.append(forged_error.value)
    intruder.close()

    # 3. Download tokens: issued, redeemed, reused, revoked, through the SDK and the download app.
    issued = lp.tokens.issue(dataset.id)
    found.add("download token", issued.token)
    reprs += [repr(issued), str(issued)]
    download = anon.tokens.redeem(issued.token)
    reprs.append(repr(download))
    with pytest.raises(TokenAlreadyUsed) as used:
        anon.tokens.redeem(issued.token)
    errors.append(used.value)
    revoked = lp.tokens.issue(dataset.id)
    found.add("revoked download token", revoked.token)
    lp.tokens.revoke(revoked.token)
    with pytest.raises(TokenRevoked) as revoked_error:
        anon.tokens.redeem(revoked.token)
    errors.append(revoked_error.value)
    with caplog.at_level(logging.WARNING, logger="httpx"):
        # The test's own requests to the app carry tokens in their URLs, which httpx logs at INFO; the SDK and
        # the app never put a token in a URL, so any httpx record with one outside this block is a real leak.
        app_answers = asyncio.run(_ask_download_app(stack, [issued.token, revoked.token]))

    # 4. RunPod: a successful deploy, a deploy RunPod refuses, a wrong API key, a value RunPod cannot hold.
    runpod = RunPodBackend(
        fake_runpod.api_key, [RunPodOffer(gpu_type="A40")], sleep=lambda _: None, timeout=5, transport="graphql"
    )
    reprs.append(repr(runpod))
    on_runpod = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40").id, backend=runpod)
    [create] = fake_runpod.calls_to("podFindAndDeployOnDemand")
    sent_env = {e["key"]: e["value"] for e in create.input["env"]}
    found.add("RunPod job token", sent_env["LORA_JOB_TOKEN"])
    runpod_pod_env = fake_runpod.pod_env(on_runpod.pod_id)
    fake_runpod.script("podFindAndDeployOnDemand", ["http_401"] * 3)
    doomed = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40")
    with pytest.raises(LoraPipelineError) as deploy_error:
        lp.jobs.deploy(doomed.id, backend=runpod)
    errors.append(deploy_error.value)
    assert lp.jobs.retrieve(doomed.id).pod_id is None  # refused: its error text is in the job's events now
    bad_key = "rpa_" + secrets.token_urlsafe(24)
    found.add("wrong RunPod API key", bad_key)
    with pytest.raises(LoraPipelineError) as runpod_auth:
        RunPodBackend(bad_key, sleep=lambda _: None, timeout=5).price("A40")
    errors.append(runpod_auth.value)
    with pytest.raises(LoraPipelineError) as unholdable:
        runpod.create_pod(name="n", image="i", gpu_type="A40", env={"LORA_JOB_TOKEN": issued.token + "\x00"})
    errors.append(unholdable.value)
    credentials = lp.jobs.issue_token(lp.jobs.create(dataset.id, base_model="tiny").id)
    found.add("issued job token", credentials.token)

    reprs += [
        repr(lp),
        repr(service),
        repr(anon),
        repr(lp.settings),
        str(lp.settings),
        repr(Settings.resolve()),
        repr(user),
        repr(stack),
        repr(stack.config),
        str(stack.config),
        repr(credentials),
        str(credentials),
        repr(local),
        repr(handle),
    ]
    for client in (lp, service, anon):
        client.close()

    # -- the scan ---------------------------------------------------------------------------------------------
    ours = [r for r in caplog.records if r.name.startswith("lora_pipeline")]
    assert ours, "the run should have logged something at DEBUG"
    leaks: dict[str, list[str]] = {}
    for record in caplog.records:
        leaks.setdefault(f"log record of {record.name}", []).extend(found.found_in(_record_text(record)))
    leaks["gateway log"] = found.found_in(gateway_log.read_text(errors="replace")[log_offset:])
    leaks["database rows"] = found.found_in(_dump_database(stack))
    for error in errors:
        leaks[f"error {type(error).__name__}"] = found.found_in(_error_text(error))
    for text in reprs:
        leaks[f"repr {text[:40]}"] = found.found_in(text)
    leaks["download app answers"] = found.found_in(json.dumps(app_answers))
    for path in (tmp_path / "pods").glob("*.log"):
        leaks[f"pod log {path.name}"] = found.found_in(path.read_text(errors="replace"))
    for artifact in ("selftest_model.json", "training_summary.json"):
        stored = httpx.get(
            f"{stack.url}/storage/v1/object/lora-models/{user.id}/{job.id}/{artifact}",
            headers={"apikey": stack.service_role_key, "Authorization": f"Bearer {stack.service_role_key}"},
        )
        assert stored.status_code == 200
        leaks[f"artifact {artifact}"] = found.found_in(stored.text)
    # A pod holds its own job's token and the anon key, nothing more.
    leaks["LocalBackend pod env"] = found.found_in(json.dumps(pod_env), allowed=("job token",))
    leaks["RunPod deploy request env"] = found.found_in(json.dumps(sent_env), allowed=("RunPod job token",))
    leaks["RunPod pod env"] = found.found_in(json.dumps(runpod_pod_env), allowed=("RunPod job token",))
    assert {where: names for where, names in leaks.items() if names} == {}

    assert set(sent_env) == DOCUMENTED_ENV
    assert set(runpod_pod_env) == DOCUMENTED_ENV | RUNPOD_ADDS | FAKE_ONLY
    assert runpod_pod_env["RUNPOD_API_KEY"] != fake_runpod.api_key, "a pod gets a pod-scoped RunPod key"
    assert sent_env["SUPABASE_ANON_KEY"] == stack.anon_key and pod_env["SUPABASE_ANON_KEY"] == stack.anon_key
    assert not [name for name in pod_env if "SERVICE" in name or "SECRET" in name or name == "RUNPOD_API_KEY"]
    assert {"LORA_JOB_ID", "LORA_JOB_TOKEN", "SUPABASE_URL", "SUPABASE_ANON_KEY"} <= set(pod_env)


async def _ask_download_app(stack: LocalSupabase, tokens: list[str]) -> list[Any]:
    client = AsyncLoraPipeline(url=stack.url, anon_key=stack.anon_key, role=Role.ANON)
    app = create_dataset_download_app(client)
    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as web:
        for token in [*tokens, secrets.token_urlsafe(32)]:
            response = await web.get("/datasets/download", params={"token": token})
            answers.append([response.status_code, response.text, dict(response.headers)])
    await client.close()
    return answers
