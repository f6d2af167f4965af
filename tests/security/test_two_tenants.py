"""A hostile second tenant (issue 12): service-side operations for user B while user A writes what A can.

Code that runs with the service role bypasses RLS, so every service-side operation is run here for the victim
B after the attacker A has written the nastiest rows the schema lets A write (and has tried the ones it must
not), and B's outcome is compared with the outcome of the same operation in a world without A. A's writes go
through the gateway with A's own session, as A's code would send them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_pipeline import Conflict
from lora_pipeline.backends.base import PodState
from lora_pipeline.backends.local import LocalBackend
from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.types.jobs import JobStatus

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "support_chat.jsonl"
MODEL = "b-model"
"""The victim's model name, which the attacker also uses for everything it may write."""


@dataclass
class Tenant:
    user: Any
    lp: Any
    dataset: Any

    def headers(self, stack: LocalSupabase) -> dict[str, str]:
        return {"apikey": stack.anon_key, "Authorization": f"Bearer {self.user.access_token}"}


@pytest.fixture
def http(local_supabase: LocalSupabase) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_supabase.url, timeout=30) as client:
        yield client


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(
        work_dir=tmp_path / "pods", extra_env={"LORA_TRAINER": "selftest", "LORA_HEARTBEAT_SECONDS": "0.5"}
    )


def tenant(user_factory: Any) -> Tenant:
    user, lp = user_factory()
    return Tenant(user, lp, lp.datasets.upload(SAMPLE, name="support", progress=None))


def pod_finished(lp: Any, backend: LocalBackend, dataset_id: str, **create: Any) -> Any:
    """A job of ``lp``'s user whose pod ran to its end; the gate is left to whoever syncs next."""
    job = lp.jobs.create(dataset_id, base_model="tiny", gates={"model_name": MODEL}, **create)
    job = lp.jobs.deploy(job.id, backend=backend)
    handle = backend.handle_for(job.pod_id)
    assert handle is not None and backend.wait(handle, timeout=120) == 0
    return lp.jobs.retrieve(job.id)


def service_gate(service: Any, job_id: str, backend: LocalBackend) -> tuple[Any, Any]:
    """What the service-role sync loop does for a finished job: reconcile, then its configured gate."""
    (job,) = service.jobs.sync(job_id, backend=backend)
    return job, service.gates.report(job_id)


def victim_gate_outcome(service: Any, victim: Tenant, backend: LocalBackend, attack: Any) -> dict[str, Any]:
    """B's champion flow under the service role: a first job, then a worse one that the delta must block."""
    victim.lp.baselines.create(MODEL, metric="eval_loss", kind="max", threshold=50.0)
    victim.lp.baselines.create(
        MODEL, metric="eval_loss", kind="delta", direction="lower_is_better", threshold=0.05, baseline="champion"
    )
    first = pod_finished(victim.lp, backend, victim.dataset.id)
    first, first_report = service_gate(service, first.id, backend)
    attack()
    second = pod_finished(victim.lp, backend, victim.dataset.id, hyperparameters={"max_steps": 3})
    second, second_report = service_gate(service, second.id, backend)
    delta = next(r for r in second_report.results if r.kind.value == "delta")
    return {
        "first": (first.status, first.status_reason, first_report.decision),
        "second": (second.status, second.status_reason, second_report.decision),
        "statuses": sorted((r.kind.value, r.status.value) for r in second_report.results),
        "baseline_is_b_first": delta.baseline_job_id == first.id,
        "b_notifications": sorted(n.kind for n in victim.lp.notifications.list()),
    }


def test_a_tenant_cannot_steer_another_tenants_gate_under_the_service_role(
    local_supabase: LocalSupabase, user_factory: Any, service_client: Any, backend: LocalBackend, http: httpx.Client
) -> None:
    quiet = victim_gate_outcome(service_client, tenant(user_factory), backend, lambda: None)

    victim, attacker = tenant(user_factory), tenant(user_factory)

    def attack() -> None:
        # A champion of A's own under B's model name: a nearly untrained job that A's lenient gate passes.
        own = attacker.lp.baselines.create(MODEL, metric="eval_loss", kind="max", threshold=1e9, severity="info")
        weak = pod_finished(attacker.lp, backend, attacker.dataset.id, hyperparameters={"max_steps": 1})
        assert service_gate(service_client, weak.id, backend)[1].decision.value == "pass"
        attacker.lp.baselines.deactivate(own.id)
        # Conditions under B's model name that fail any model.
        attacker.lp.baselines.create(MODEL, metric="eval_loss", kind="max", threshold=-1.0)
        attacker.lp.baselines.create(MODEL, metric="eval_loss", kind="min", threshold=1e9)
        attacker.lp.baselines.create(
            MODEL, metric="eval_loss", kind="ratio", direction="lower_is_better", threshold=0.0, baseline="champion"
        )
        attacker.lp.baselines.create(MODEL, metric="never_logged", kind="max", threshold=1.0, on_missing="fail")
        # Results written directly, for A's job and for B's: refused at the grant.
        forged = {"job_id": weak.id, "user_id": attacker.user.id, "model_name": MODEL, "decision": "pass"}
        response = http.post("/rest/v1/validation_results", json=forged, headers=attacker.headers(local_supabase))
        assert response.status_code == 403 and response.json()["code"] == "42501"
        response = http.post(
            "/rest/v1/rpc/record_gate_result",
            json={"job_id": victim_jobs()[0], "model_name": MODEL, "decision": "pass"},
            headers=attacker.headers(local_supabase),
        )
        assert response.status_code == 404, "B's job does not exist for A"

    def victim_jobs() -> list[str]:
        return [j.id for j in victim.lp.jobs.list()]

    loud = victim_gate_outcome(service_client, victim, backend, attack)
    assert loud == quiet
    assert quiet["second"] == (JobStatus.FAILED, "gate_failed", quiet["second"][2])
    assert quiet["baseline_is_b_first"] is True


def test_a_forged_gate_record_is_refused_even_for_the_owner(
    local_supabase: LocalSupabase, user_factory: Any, backend: LocalBackend, http: httpx.Client
) -> None:
    """``record_gate_result`` re-derives the outcome: the owner cannot record a pass their metrics do not give."""
    owner = tenant(user_factory)
    condition = owner.lp.baselines.create(MODEL, metric="eval_loss", kind="max", threshold=0.001)
    job = pod_finished(owner.lp, backend, owner.dataset.id)
    report = owner.lp.gates.validate(job.id, model_name=MODEL, dry_run=True)
    assert report.decision.value == "block"
    row = report.to_row()
    calls = {
        "pass over a failed condition": {**row, "decision": "pass"},
        "the failed condition marked passed": {
            **row,
            "decision": "pass",
            "conditions": [{**c, "status": "pass", "effect": "pass"} for c in row["conditions"]],
        },
        "no conditions at all": {**row, "decision": "pass", "conditions": []},
        "another value": {**row, "conditions": [{**c, "actual": 0.0} for c in row["conditions"]]},
        "a milder severity": {**row, "conditions": [{**c, "severity": "info"} for c in row["conditions"]]},
    }
    for what, forged in calls.items():
        response = http.post(
            "/rest/v1/rpc/record_gate_result",
            json={
                "job_id": job.id,
                "model_name": MODEL,
                **{k: forged[k] for k in ("conditions", "summary", "decision")},
            },
            headers=owner.headers(local_supabase),
        )
        assert response.status_code == 400 and response.json()["code"] == "22023", (what, response.text)
    assert owner.lp.gates.report(job.id) is None, "nothing forged was recorded"
    recorded = owner.lp.gates.validate(job.id, model_name=MODEL, apply=True)
    assert recorded.decision.value == "block" and recorded.results[0].condition_id == condition.id
    assert owner.lp.jobs.retrieve(job.id).status_reason == "gate_failed"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    conditions=st.lists(
        st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["min", "max", "delta", "ratio"]),
                "threshold": st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
                "severity": st.sampled_from(["critical", "warning", "info"]),
                "baseline": st.sampled_from(["pinned", "champion"]),
                "metric": st.sampled_from(["eval_loss", "train_loss", "never_logged"]),
                "version": st.sampled_from([None, "v1"]),
            }
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_conditions_of_another_tenant_leave_a_gate_unchanged(
    gate_world: dict[str, Any], conditions: list[dict[str, Any]]
) -> None:
    attacker, service, job_id, quiet = (gate_world[k] for k in ("attacker", "service", "job_id", "quiet"))
    for spec in conditions:
        kind = spec["kind"]
        relative = kind in ("delta", "ratio")
        try:
            attacker.lp.baselines.create(
                MODEL,
                metric=spec["metric"],
                kind=kind,
                threshold=abs(spec["threshold"]) if relative else spec["threshold"],
                direction="lower_is_better" if relative else None,
                baseline=spec["baseline"] if relative else "pinned",
                baseline_value=1.0 if relative and spec["baseline"] == "pinned" else None,
                severity=spec["severity"],
                version=spec["version"],
            )
        except Conflict:
            pass  # the attacker's own key again with other bounds: one active condition per key (migration 0009)
    report = service.gates.validate(job_id, model_name=MODEL, dry_run=True)
    assert (report.decision, [(r.condition_id, r.status) for r in report.results]) == quiet


@pytest.fixture
def gate_world(user_factory: Any, service_client: Any, backend: LocalBackend) -> dict[str, Any]:
    """One victim job and its gate outcome without an attacker, shared by the hypothesis examples of a test."""
    victim, attacker = tenant(user_factory), tenant(user_factory)
    victim.lp.baselines.create(MODEL, metric="eval_loss", kind="max", threshold=50.0)
    victim.lp.baselines.create(
        MODEL, metric="eval_loss", kind="ratio", direction="lower_is_better", threshold=1.5, baseline_value=5.0
    )
    job = pod_finished(victim.lp, backend, victim.dataset.id)
    report = service_client.gates.validate(job.id, model_name=MODEL, dry_run=True)
    quiet = (report.decision, [(r.condition_id, r.status) for r in report.results])
    return {"attacker": attacker, "service": service_client, "job_id": job.id, "quiet": quiet}


def test_a_pod_id_of_another_tenant_is_never_acted_on(
    local_supabase: LocalSupabase, user_factory: Any, service_client: Any, tmp_path: Path, http: httpx.Client
) -> None:
    """A records B's pod id on A's own job; the service's cancel, sync and logs of A's job leave B's pod alone."""
    slow = LocalBackend(
        work_dir=tmp_path / "slow",
        extra_env={"LORA_TRAINER": "selftest", "LORA_HEARTBEAT_SECONDS": "0.3", "LORA_SELFTEST_STEP_SECONDS": "0.5"},
    )
    victim, attacker = tenant(user_factory), tenant(user_factory)
    b_job = victim.lp.jobs.create(victim.dataset.id, base_model="tiny", hyperparameters={"max_steps": 400})
    b_job = victim.lp.jobs.deploy(b_job.id, backend=slow)
    b_handle = slow.handle_for(b_job.pod_id)
    assert b_handle is not None

    a_job = attacker.lp.jobs.create(attacker.dataset.id, base_model="tiny")
    headers = attacker.headers(local_supabase)
    for status in ("validating", "queued", "provisioning"):
        moved = http.post("/rest/v1/rpc/job_move", json={"job_id": a_job.id, "status": status}, headers=headers)
        assert moved.status_code == 200, moved.text
    direct = http.patch(
        "/rest/v1/training_jobs", params={"id": f"eq.{a_job.id}"}, json={"pod_id": b_job.pod_id}, headers=headers
    )
    assert direct.status_code == 403 and direct.json()["code"] == "42501", "pod_id is outside the users' grant"
    for bad in ("../../etc/passwd", "/etc/passwd", "a" * 200, "x\ny"):
        refused = http.post("/rest/v1/rpc/job_record_launch", json={"job_id": a_job.id, "pod_id": bad}, headers=headers)
        assert refused.status_code == 400 and refused.json()["code"] == "22023", bad
    recorded = http.post(
        "/rest/v1/rpc/job_record_launch", json={"job_id": a_job.id, "pod_id": b_job.pod_id}, headers=headers
    )
    assert recorded.status_code == 200, recorded.text

    assert b_handle.pod_id not in service_client.jobs.logs(a_job.id, backend=slow)
    synced = {j.id: j for j in service_client.jobs.sync(backend=slow)}
    assert (synced[a_job.id].status, synced[a_job.id].status_reason) == (JobStatus.FAILED, "pod_lost")
    service_client.jobs.cancel(a_job.id, backend=slow)
    reaped = service_client.jobs.reap(backend=slow)
    assert b_handle.pod_id not in {getattr(p, "pod_id", p) for p in reaped}
    assert slow.status(b_handle).state is PodState.RUNNING, "B's pod survived everything done for A's job"
    assert victim.lp.jobs.retrieve(b_job.id).status in (JobStatus.PROVISIONING, JobStatus.RUNNING)
    events = [e.message for e in attacker.lp.jobs.events(a_job.id)]
    assert any("not a pod of this job" in message for message in events)
    victim.lp.jobs.cancel(b_job.id, backend=slow)


def test_dataset_objects_stay_in_their_owners_folder(
    local_supabase: LocalSupabase, user_factory: Any, service_client: Any, tmp_path: Path, http: httpx.Client
) -> None:
    victim, attacker = tenant(user_factory), tenant(user_factory)
    headers = attacker.headers(local_supabase)
    b_path = f"{victim.user.id}/notes/secret.txt"  # an object of B's that no dataset row names
    attempts = {
        "insert into B's folder": ("post", {"user_id": attacker.user.id, "name": "x", "storage_path": b_path}),
        "insert a climbing file name": (
            "post",
            {"user_id": attacker.user.id, "name": "x", "file_name": "../../owned.txt"},
        ),
        "insert an absolute file name": ("post", {"user_id": attacker.user.id, "name": "x", "file_name": "/tmp/x"}),
        "repoint an uploaded dataset": ("patch", {"storage_path": b_path}),
        "rename an uploaded file": ("patch", {"file_name": "../x"}),
        "swap the hash": ("patch", {"sha256": "0" * 64}),
        "back to uploading": ("patch", {"status": "uploading"}),
    }
    for what, (method, body) in attempts.items():
        if method == "post":
            response = http.post("/rest/v1/datasets", json=body, headers=headers)
        else:
            response = http.patch(
                "/rest/v1/datasets", params={"id": f"eq.{attacker.dataset.id}"}, json=body, headers=headers
            )
        assert response.status_code in (400, 403), (what, response.text)
        assert response.json()["code"] in ("23514", "42501"), (what, response.text)
    mine = attacker.lp.datasets.retrieve(attacker.dataset.id)
    assert (mine.storage_path, mine.sha256) == (attacker.dataset.storage_path, attacker.dataset.sha256)

    # The service downloads B's dataset into a folder: B's bytes, inside the folder.
    folder = tmp_path / "downloads"
    folder.mkdir()
    path = service_client.datasets.download(victim.dataset.id, folder, progress=None)
    assert path.parent == folder.resolve() or path.parent == folder
    assert hashlib.sha256(path.read_bytes()).hexdigest() == victim.dataset.sha256
    # A's download token redeems to A's own object only.
    issued = attacker.lp.tokens.issue(attacker.dataset.id)
    got = service_client.tokens.download(issued.token, folder)
    assert hashlib.sha256(got.read_bytes()).hexdigest() == attacker.dataset.sha256


def test_costs_and_notifications_of_a_tenant_are_written_only_by_the_control_plane(
    local_supabase: LocalSupabase, user_factory: Any, backend: LocalBackend, http: httpx.Client
) -> None:
    victim, attacker = tenant(user_factory), tenant(user_factory)
    b_job = pod_finished(victim.lp, backend, victim.dataset.id)
    a_job = pod_finished(attacker.lp, backend, attacker.dataset.id)
    headers = attacker.headers(local_supabase)
    cost = {
        "job_id": a_job.id,
        "user_id": attacker.user.id,
        "attempt": 2,
        "hourly_rate": 0,
        "seconds": 0,
        "amount_usd": 0,
    }
    assert http.post("/rest/v1/cost_records", json=cost, headers=headers).status_code == 403
    patched = http.patch(
        "/rest/v1/cost_records", params={"job_id": f"eq.{a_job.id}"}, json={"amount_usd": 0}, headers=headers
    )
    assert patched.status_code == 403, "a user cannot rewrite what a job cost"
    note = {"user_id": attacker.user.id, "job_id": b_job.id, "kind": "gate_block", "title": "B blocked"}
    assert http.post("/rest/v1/notifications", json=note, headers=headers).status_code == 403
    event = {"job_id": b_job.id, "user_id": attacker.user.id, "kind": "status", "message": "x"}
    assert http.post("/rest/v1/job_events", json=event, headers=headers).status_code == 403
    for job_id in (b_job.id, str(uuid.uuid4())):
        answer = http.post("/rest/v1/rpc/job_account_cost", json={"job_id": job_id}, headers=headers)
        assert answer.status_code == 404, "another tenant's job and no job answer alike"
    assert {n.job_id for n in victim.lp.notifications.list()} <= {b_job.id, None}
