"""The pod launch contract, in one place: every pod environment variable, the bootstrap and the container command.

The launcher side (:mod:`lora_pipeline.backends`) builds a pod's env and command only through
:func:`container_env` and :func:`container_command`; the pod side (the bootstrap in ``bootstrap.sh`` and
:mod:`lora_pipeline.pod`) reads the same names. Stdlib only, so the pod imports it cheaply.

The bootstrap travels base64-encoded in :data:`BOOTSTRAP` and the container command is a fixed one-liner that
decodes it, checks its SHA-256 and runs it: no quoting hazard of RunPod's API, Docker's CMD parsing or the
shell reaches the pod (research/runpod.md §1.8, §2.3).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources

# --- the job's credentials (never the service-role key) -------------------------------------------------------
JOB_ID = "LORA_JOB_ID"
JOB_TOKEN = "LORA_JOB_TOKEN"  # noqa: S105 - a variable name
SUPABASE_URL = "SUPABASE_URL"
SUPABASE_ANON_KEY = "SUPABASE_ANON_KEY"
# --- what the bootstrap installs and how long it may run ------------------------------------------------------
BOOTSTRAP = "LORA_BOOTSTRAP_B64"
WHEEL_BUCKET = "LORA_WHEEL_BUCKET"
WHEEL_OBJECT = "LORA_WHEEL_OBJECT"
WHEEL_SHA256 = "LORA_WHEEL_SHA256"
REQUIREMENT = "LORA_REQUIREMENT"
MAX_RUNTIME_SECONDS = "LORA_MAX_RUNTIME_SECONDS"
SECRET_ENV = "LORA_SECRET_ENV"  # noqa: S105 - a variable name
"""Space-separated names of the variables that carry RunPod secret references (checked resolved at boot)."""
EXIT_PAUSE = "LORA_BOOTSTRAP_EXIT_PAUSE"
TAIL_LINES = "LORA_BOOTSTRAP_TAIL_LINES"
# --- read by the pod program ------------------------------------------------------------------------------------
TRAINER = "LORA_TRAINER"
HEARTBEAT_SECONDS = "LORA_HEARTBEAT_SECONDS"
WORK_DIR = "LORA_WORK_DIR"
POD_ID = "LORA_POD_ID"
POD_BACKEND = "LORA_POD_BACKEND"
# --- set by RunPod inside every pod -----------------------------------------------------------------------------
RUNPOD_POD_ID = "RUNPOD_POD_ID"
RUNPOD_API_KEY = "RUNPOD_API_KEY"
RUNPOD_API_BASE_URL = "RUNPOD_API_BASE_URL"
# --- files the pod program leaves for the bootstrap ----------------------------------------------------------------
POD_ENDED_FILE = "pod-ended"
"""Written in the pod program's work dir (``$LORA_WORK_DIR/lora-pipeline/``) once RunPod accepted the pod's own
termination, so the bootstrap, which ends the pod when the program exits, does not ask a second time."""

MODELS_BUCKET = "lora-models"
"""Where the wheel travels: the job's own folder, readable with its job token (migration 0006)."""
LAUNCHER_NAMES = frozenset(
    {JOB_ID, JOB_TOKEN, SUPABASE_URL, SUPABASE_ANON_KEY, BOOTSTRAP, WHEEL_BUCKET, WHEEL_OBJECT, WHEEL_SHA256}
    | {REQUIREMENT, MAX_RUNTIME_SECONDS, SECRET_ENV, POD_ID, POD_BACKEND, RUNPOD_POD_ID, RUNPOD_API_KEY}
    | {RUNPOD_API_BASE_URL}
)
"""Names a user's ``env``/``secrets`` may not set: the launcher and RunPod own them."""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_OBJECT_NAME = re.compile(r"[A-Za-z0-9._/-]+\Z")
_SERVICE_NAME = re.compile(r"SERVICE_ROLE|SERVICE_KEY|SECRET_KEY|DB_URL|DATABASE_URL|DB_PASSWORD", re.IGNORECASE)


def bootstrap_script() -> str:
    """The bash script every RunPod container runs first (``lora_pipeline/pod/bootstrap.sh``)."""
    return resources.files(__package__).joinpath("bootstrap.sh").read_text(encoding="utf-8")


def secret_reference(secret_name: str) -> str:
    """How RunPod is told to put a secret's value in a variable: ``{{ RUNPOD_SECRET_<name> }}``."""
    return "{{ RUNPOD_SECRET_" + secret_name + " }}"


def container_env(
    *,
    job_env: Mapping[str, str],
    max_runtime_seconds: int,
    wheel_object: str | None = None,
    wheel_sha256: str | None = None,
    requirement: str | None = None,
    user_env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The complete env of a RunPod container: the job's credentials, the package, the deadline, the bootstrap.

    ``secrets`` maps variable names to RunPod secret names and becomes references, never values.

    Raises:
        ValueError: neither a wheel (object + SHA-256) nor a requirement, or a malformed one.
    """
    if wheel_object:
        if not _OBJECT_NAME.match(wheel_object) or ".." in wheel_object or not wheel_sha256:
            raise ValueError("wheel_object must be a plain object name and come with wheel_sha256")
        package = {WHEEL_BUCKET: MODELS_BUCKET, WHEEL_OBJECT: wheel_object, WHEEL_SHA256: wheel_sha256}
    elif requirement and requirement.strip():
        package = {REQUIREMENT: requirement.strip()}
    else:
        raise ValueError("a pod needs a wheel (wheel_object and wheel_sha256) or an explicit requirement")
    env = {**(user_env or {}), **{name: secret_reference(secret) for name, secret in (secrets or {}).items()}}
    env.update(job_env)
    env.update(package)
    env[MAX_RUNTIME_SECONDS] = str(int(max_runtime_seconds))
    if secrets:
        env[SECRET_ENV] = " ".join(sorted(secrets))
    env[BOOTSTRAP] = base64.b64encode(bootstrap_script().encode("utf-8")).decode("ascii")
    return env


def container_command(script: str | None = None) -> list[str]:
    """The container command: decode ``$LORA_BOOTSTRAP_B64``, check its SHA-256, run it with bash.

    The digest is of the script itself, so a truncated or altered env value stops the pod at once instead of
    running half a script.
    """
    text = bootstrap_script() if script is None else script
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    path = '"${TMPDIR:-/tmp}/lora-bootstrap.sh"'
    line = (
        f'printf %s "${BOOTSTRAP}" | base64 -d > {path} '
        f'&& echo "{digest}  "{path} | sha256sum -c --quiet - '
        f"&& exec /bin/bash {path}"
    )
    return ["/bin/bash", "-c", line]


def docker_args(command: Sequence[str]) -> str:
    """RunPod's JSON ``dockerArgs`` form, which replaces the image's entrypoint instead of being shlex-split."""
    if not command:
        raise ValueError("command must not be empty")
    return json.dumps({"cmd": list(command[-1:]), "entrypoint": list(command[:-1])})


def command_from_docker_args(value: str) -> list[str]:
    """The argv a container runs for a ``dockerArgs`` value in the JSON form (what RunPod's backend does)."""
    parsed = json.loads(value)
    return [*parsed.get("entrypoint", []), *parsed.get("cmd", [])]


def check_user_env(env: Mapping[str, str] | None, secrets: Mapping[str, str] | None) -> list[str]:
    """Problems with a user's plain ``env`` and ``secrets`` (empty when fine); values are never quoted back.

    Refused: names that are not variable names or that the launcher owns, names that would carry Supabase
    service credentials or database URLs, values that are service-role keys, NUL characters, secret names
    RunPod could not hold, and a name given both as plain env and as a secret.
    """
    from .._roles import key_postgres_role

    problems = []
    for name, value in (env or {}).items():
        problems += _name_problems(name, "env")
        if not isinstance(value, str):
            problems.append(f"env[{name!r}] must be a string")
        elif "\x00" in value:
            problems.append(f"env[{name!r}] contains a NUL character, which a process environment cannot hold")
        elif key_postgres_role(value.strip()) == "service_role":
            problems.append(f"env[{name!r}] holds a service-role key; a pod gets the anon key and its job token only")
    for name, secret in (secrets or {}).items():
        problems += _name_problems(name, "secrets")
        if not isinstance(secret, str) or not _SECRET_NAME.match(secret):
            problems.append(f"secrets[{name!r}] must name a RunPod secret (letters, digits, '_', '-', '.')")
        if name in (env or {}):
            problems.append(f"{name} is given both in env and in secrets")
    return problems


def _name_problems(name: object, argument: str) -> list[str]:
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        return [f"{argument} name {name!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"]
    if name in LAUNCHER_NAMES:
        return [f"{argument} may not set {name}: the launcher or RunPod sets it"]
    if _SERVICE_NAME.search(name):
        return [f"{argument} may not set {name}: a pod never receives Supabase service credentials"]
    return []


__all__ = [
    "BOOTSTRAP",
    "LAUNCHER_NAMES",
    "MODELS_BUCKET",
    "bootstrap_script",
    "check_user_env",
    "command_from_docker_args",
    "container_command",
    "container_env",
    "docker_args",
    "secret_reference",
]
