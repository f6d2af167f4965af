"""Ten jobs waited on at once plus a service-side ``sync`` loop stay inside RunPod's per-user quota.

The fake enforces RunPod's published example policy (60 requests a minute, 3000 an hour, 50000 a day) with
token buckets and answers 429 past it; the backend must never get there. It holds because the job's truth is
its heartbeat in Supabase: ``status`` is answered from one shared pod list per ``status_ttl`` window, a launch
lists once, the catalog is cached, and every request waits on the key's shared budget.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.testing.fake_runpod.rest_limits import RUNPOD_EXAMPLE_POLICY
from lora_pipeline.types.jobs import JobStatus

WAITERS = 10
WATCH_SECONDS = 12.0


def test_ten_waiters_and_a_sync_loop_stay_inside_sixty_requests_a_minute(
    local_supabase: Any, owner: Any, fake_runpod: Any
) -> None:
    user, lp, dataset = owner
    fake_runpod.set_rate_limit(RUNPOD_EXAMPLE_POLICY)
    fake_runpod.set_stock("A40", "COMMUNITY", WAITERS)
    backend = RunPodBackend(fake_runpod.api_key, [RunPodOffer(gpu_type="A40")], timeout=5)
    started = time.monotonic()
    jobs = [
        lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40").id, backend=backend)
        for _ in range(WAITERS)
    ]
    errors: list[BaseException] = []
    finished: dict[str, Any] = {}
    stop_syncing = threading.Event()

    def wait(job_id: str) -> None:
        client = local_supabase.client(user=user)
        try:
            finished[job_id] = client.jobs.wait_for_completion(
                job_id, backend=backend, timeout=90, poll_interval=0.2, progress=None
            )
        except BaseException as error:
            errors.append(error)
        finally:
            client.close()

    def sync_loop() -> None:
        client = local_supabase.client(user=user)
        try:
            while not stop_syncing.wait(0.5):
                client.jobs.sync(backend=backend, run_gates=False)
        except BaseException as error:
            errors.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=wait, args=(job.id,)) for job in jobs]
    threads.append(threading.Thread(target=sync_loop))
    for thread in threads:
        thread.start()
    time.sleep(WATCH_SECONDS)
    for job in jobs:  # the jobs end; every waiter sees it at its next poll
        lp.jobs.cancel(job.id, backend=backend)
    for thread in threads[:-1]:
        thread.join(timeout=60)
    stop_syncing.set()
    threads[-1].join(timeout=30)
    elapsed = time.monotonic() - started

    rest_calls = [c for c in fake_runpod.calls if c.operation_type == "rest"]
    by_operation: dict[str, int] = {}
    for call in rest_calls:
        by_operation[str(call.operation)] = by_operation.get(str(call.operation), 0) + 1
    print(f"\n{len(rest_calls)} RunPod requests in {elapsed:.1f} s for {WAITERS} waiters + sync: {by_operation}")
    assert errors == []
    assert {j.status for j in finished.values()} == {JobStatus.CANCELLED} and len(finished) == WAITERS
    assert fake_runpod.rate_limited == 0, "no request met a 429"
    assert elapsed < 60 and len(rest_calls) <= 60, "inside one minute, at most the minute's quota"
    assert fake_runpod.pods() == []


def test_a_sync_pass_over_many_jobs_lists_pods_once(owner: Any, fake_runpod: Any) -> None:
    _, lp, dataset = owner
    launcher = RunPodBackend(fake_runpod.api_key, [RunPodOffer(gpu_type="A40")], timeout=5)
    for _ in range(4):
        lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40").id, backend=launcher)
    service = RunPodBackend(fake_runpod.api_key, timeout=5)  # the service's loop: it launched none of them
    before = len(fake_runpod.calls)
    synced = lp.jobs.sync(backend=service, run_gates=False)
    assert len(synced) == 4 and {j.status for j in synced} == {JobStatus.PROVISIONING}
    assert [c.operation for c in fake_runpod.calls[before:]] == ["listPods"]
