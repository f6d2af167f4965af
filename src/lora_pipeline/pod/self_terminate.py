"""A pod ends itself: RunPod restarts exited containers and keeps billing (research/runpod.md §0.4, §2.2).

In order, with the pod-scoped ``RUNPOD_API_KEY``: REST v2 ``DELETE /v2/pods/{id}``; ``runpodctl`` when the
image has it; GraphQL ``podTerminate`` until RunPod switches GraphQL off (a 410 there is simply a failed
try). A 404 means the pod is already gone, which is success. Local pods simply exit. Failures are logged:
the bootstrap's runtime limit, the controller's runtime guard and the reaper are the backstops.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from urllib.parse import quote

from .._logging import get_logger
from .environment import PodEnvironment

log = get_logger("pod")


def terminate_own_pod(env: PodEnvironment) -> bool:
    """Ask RunPod to terminate this pod; True when a request was accepted (False for local pods)."""
    if env.backend != "runpod" or not env.pod_id:
        return False
    if env.runpod_api_key and _over_rest(env):
        return True
    if _with_runpodctl(env.pod_id):
        return True
    if not env.runpod_api_key:
        log.warning("cannot end pod %s: no RUNPOD_API_KEY in the pod's environment", env.pod_id)
        return False
    return _over_graphql(env)


def _over_rest(env: PodEnvironment) -> bool:
    import httpx

    try:
        response = httpx.delete(
            f"{env.runpod_api_base}/v2/pods/{quote(str(env.pod_id), safe='')}",
            headers={"Authorization": f"Bearer {env.runpod_api_key}"},
            timeout=30,
        )
    except httpx.HTTPError as error:
        log.warning("could not end pod %s over REST: %s", env.pod_id, type(error).__name__)
        return False
    if response.status_code in (200, 204, 404):
        return True
    log.warning("RunPod REST refused to end pod %s: HTTP %s", env.pod_id, response.status_code)
    return False


def _with_runpodctl(pod_id: str) -> bool:
    runpodctl = shutil.which("runpodctl")
    if not runpodctl:
        return False
    result = subprocess.run(
        [runpodctl, "remove", "pod", pod_id], capture_output=True, text=True, timeout=60, check=False
    )
    return result.returncode == 0


def _over_graphql(env: PodEnvironment) -> bool:
    import httpx

    query = "mutation { podTerminate(input: {podId: %s}) }" % json.dumps(env.pod_id)  # noqa: UP031 - GraphQL braces
    try:
        response = httpx.post(
            f"{env.runpod_api_base}/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {env.runpod_api_key}"},
            timeout=30,
        )
        body = response.json()
    except (httpx.HTTPError, ValueError) as error:
        log.warning("could not end pod %s: %s", env.pod_id, error)
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    if response.status_code >= 400 or (errors and "not found" not in str(errors).lower()):
        log.warning("RunPod refused to end pod %s: HTTP %s", env.pod_id, response.status_code)
        return False
    return True


__all__ = ["terminate_own_pod"]
