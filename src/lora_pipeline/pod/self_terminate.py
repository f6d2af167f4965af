"""A pod ends itself: RunPod restarts exited containers and keeps billing (research/runpod.md §0.4, §2.2).

``runpodctl`` when the image has it, else GraphQL ``podTerminate`` with the pod-scoped ``RUNPOD_API_KEY``.
Local pods simply exit. Failures are logged: the pod's ``terminateAfter`` deadline and the controller's reaper
are the backstops.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from .._logging import get_logger
from .environment import PodEnvironment

log = get_logger("pod")


def terminate_own_pod(env: PodEnvironment) -> bool:
    """Ask RunPod to terminate this pod; True when a request was accepted (False for local pods)."""
    if env.backend != "runpod" or not env.pod_id:
        return False
    runpodctl = shutil.which("runpodctl")
    if runpodctl:
        result = subprocess.run(
            [runpodctl, "remove", "pod", env.pod_id], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode == 0:
            return True
    if not env.runpod_api_key:
        log.warning("cannot end pod %s: no RUNPOD_API_KEY in the pod's environment", env.pod_id)
        return False
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
