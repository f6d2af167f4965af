"""RunPod GraphQL text and reply decoding, with no I/O (research/runpod.md §1).

runpod-python 1.12.0 pastes env values, docker args and names into its mutations raw: a ``"`` or a newline
breaks the request, and a crafted value adds env entries of its own. Here every string literal is written
with ``json.dumps``, whose output is a valid GraphQL string literal for any text (quotes, backslashes,
newlines, ``\"\"\"``, unicode), so what the caller passes is byte for byte what RunPod stores.

Also here: the checks RunPod applies to env (key shape, at most 50 variables), and the translation of
everything the SDK can raise into the error tree.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .._compat import StrEnum
from .._error_mapping import map_error
from .._exceptions import APIConnectionError, ConfigError, LoraPipelineError, Timeout

MAX_ENV_VARS = 50
"""RunPod's documented limit on env variables per pod."""
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FIELD_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*\Z")


class CloudType(StrEnum):
    """Where RunPod may place a pod: either cloud, or one of them."""

    ALL = "ALL"
    SECURE = "SECURE"
    COMMUNITY = "COMMUNITY"


class EnumValue(str):
    """A GraphQL enum value (written bare, unlike a string)."""


def literal(value: Any) -> str:
    """``value`` as a GraphQL input literal; every string goes through ``json.dumps``."""
    if value is None:
        return "null"
    if isinstance(value, EnumValue):
        if not _FIELD_NAME.match(value):
            raise ValueError(f"not a GraphQL enum value: {value!r}")
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("GraphQL has no literal for a non-finite float")
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_field_name(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    raise TypeError(f"no GraphQL literal for {type(value).__name__}")


def _field_name(name: object) -> str:
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        raise ValueError(f"not a GraphQL field name: {name!r}")
    return name


def check_text(value: str, argument: str) -> str:
    """Refuse what no process environment or argv can carry: NUL and unpaired surrogates."""
    if "\x00" in value:
        raise ConfigError(
            f"{argument} contains a NUL character, which a process environment cannot hold", argument=argument
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ConfigError(f"{argument} is not valid Unicode text ({error.reason})", argument=argument) from error
    return value


def env_input(env: Mapping[str, str]) -> list[dict[str, str]]:
    """``env`` as RunPod's ``[EnvironmentVariableInput]``, after RunPod's own checks."""
    if len(env) > MAX_ENV_VARS:
        raise ConfigError(f"env has {len(env)} variables; RunPod allows at most {MAX_ENV_VARS} per pod", argument="env")
    items = []
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise ConfigError(f"env key {key!r} is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)", argument="env")
        if not isinstance(value, str):
            raise ConfigError(f"env value of {key} must be a string, not {type(value).__name__}", argument="env")
        items.append({"key": key, "value": check_text(value, f"env[{key!r}]")})
    return items


def deadline(moment: datetime) -> str:
    """A ``terminateAfter``/``stopAfter`` value: ISO-8601 in UTC with a ``Z``."""
    if moment.tzinfo is None:
        raise ConfigError(
            "terminate_after must be timezone-aware (e.g. datetime.now(timezone.utc) + ...)", argument="terminate_after"
        )
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def deploy_input(
    *,
    name: str,
    image: str,
    env: Mapping[str, str],
    docker_args: str,
    container_disk_gb: int,
    volume_gb: int,
    gpu_count: int = 1,
    ports: str | None = None,
    terminate_after: datetime | None = None,
) -> dict[str, Any]:
    """The offer-independent part of a ``PodFindAndDeployOnDemandInput``, checked before anything is sent."""
    fields: dict[str, Any] = {
        "name": check_text(name, "name"),
        "imageName": check_text(image, "image"),
        "gpuCount": gpu_count,
        "containerDiskInGb": container_disk_gb,
        "volumeInGb": volume_gb,
        "dockerArgs": check_text(docker_args, "docker_args"),
        "env": env_input(env),
    }
    if volume_gb:
        fields["volumeMountPath"] = "/workspace"
    if ports:
        fields["ports"] = check_text(ports.replace(" ", ""), "ports")
    if terminate_after is not None:
        fields["terminateAfter"] = deadline(terminate_after)
    return fields


def offer_input(gpu_type_id: str, cloud_type: str, data_center_id: str | None) -> dict[str, Any]:
    """The offer-specific part of the deploy input."""
    return {
        "gpuTypeId": gpu_type_id,
        "cloudType": EnumValue(CloudType(cloud_type).value),
        "dataCenterId": data_center_id,
    }


# --- operations -------------------------------------------------------------------------------------------
POD_FIELDS = (
    "id name desiredStatus costPerHr lastStatusChange runtime { ports { privatePort publicPort } } "
    "machine { gpuDisplayName }"
)
"""What the backend reads about a pod (a subset of what the SDK itself selects, so known to exist)."""

CREATED_FIELDS = "id name imageName env machineId machine { podHostId }"
"""The SDK's own selection on create: no price or status, hence the ``pod`` query after it."""

MY_PODS_QUERY = f"query myPods {{ myself {{ pods {{ {POD_FIELDS} }} }} }}"


def deploy_mutation(fields: Mapping[str, Any]) -> str:
    """``podFindAndDeployOnDemand`` with ``fields`` as its input object."""
    return f"mutation deploy {{ podFindAndDeployOnDemand(input: {literal(fields)}) {{ {CREATED_FIELDS} }} }}"


def pod_query(pod_id: str) -> str:
    return f"query pod {{ pod(input: {{podId: {literal(pod_id)}}}) {{ {POD_FIELDS} }} }}"


def terminate_mutation(pod_id: str) -> str:
    """``podTerminate`` returns a scalar, so there is no selection set."""
    return f"mutation terminate {{ podTerminate(input: {{podId: {literal(pod_id)}}}) }}"


def gpu_price_query(gpu_id: str) -> str:
    return (
        f"query GpuTypes {{ gpuTypes(input: {{id: {literal(gpu_id)}}}) {{ id securePrice communityPrice "
        "lowestPrice(input: {gpuCount: 1}) { uninterruptablePrice } } }"
    )


# --- replies ----------------------------------------------------------------------------------------------
def root_field(reply: Any, field: str, *, resource: str | None = None) -> Any:
    """``data.<field>`` of a reply, or a retryable error when the reply has no ``data`` object."""
    data = reply.get("data") if isinstance(reply, Mapping) else None
    if isinstance(reply, Mapping) and isinstance(reply.get("status"), int) and "data" not in reply:
        # A problem document (410 once GraphQL is switched off): the SDK hands it back as if it were a reply.
        raise map_error(service="runpod", status=reply["status"], body=reply, resource=resource)
    if not isinstance(data, Mapping):
        raise map_error(
            service="runpod", body="unreadable reply from RunPod: JSON without data or errors", resource=resource
        )
    return data.get(field)


def lowest_price(gpu_type: Mapping[str, Any]) -> float | None:
    """The cheapest on-demand per-GPU price a ``gpuTypes`` entry lists."""
    lowest = gpu_type.get("lowestPrice") or {}
    prices = [lowest.get("uninterruptablePrice"), gpu_type.get("securePrice"), gpu_type.get("communityPrice")]
    listed = [float(p) for p in prices if isinstance(p, (int, float)) and p > 0]
    return min(listed) if listed else None


def error_from_sdk(error: BaseException, *, resource: str | None = None) -> BaseException:
    """Translate what ``runpod.api.graphql.run_graphql_query`` raises; other exceptions pass through.

    The SDK keeps only ``errors[0].message`` and drops the HTTP status (except 401) and headers, so RunPod
    replies are classified by message in :func:`~lora_pipeline._error_mapping.map_error`. ``QueryError.query``
    holds the whole request, env values included: it is cleared before the error is chained as a cause.
    """
    import requests

    from ._quiet import import_runpod

    sdk_error = import_runpod("runpod.error")

    if isinstance(error, LoraPipelineError):
        return error
    if isinstance(error, sdk_error.AuthenticationError):
        return map_error(service="runpod", status=401, body=str(error), resource=resource)
    if isinstance(error, sdk_error.QueryError):
        error.query = None
        return map_error(service="runpod", body={"errors": [{"message": str(error)}]}, resource=resource)
    if isinstance(error, requests.exceptions.JSONDecodeError):
        page = " ".join(str(error.doc or "").split())[:200]
        body = f"unreadable reply from RunPod (not JSON; an edge or proxy error page?): {page}"
        return map_error(service="runpod", body=body, resource=resource)
    if isinstance(error, requests.exceptions.Timeout):
        return Timeout(f"RunPod did not answer in time: {type(error).__name__}", resource=resource, service="runpod")
    if isinstance(error, requests.exceptions.RequestException):
        return APIConnectionError(
            f"could not reach RunPod: {type(error).__name__}", resource=resource, service="runpod"
        )
    if isinstance(error, KeyError):
        return map_error(
            service="runpod", body="unreadable reply from RunPod: JSON without data or errors", resource=resource
        )
    return error


__all__ = [
    "MAX_ENV_VARS",
    "MY_PODS_QUERY",
    "CloudType",
    "EnumValue",
    "check_text",
    "deadline",
    "deploy_input",
    "deploy_mutation",
    "env_input",
    "error_from_sdk",
    "gpu_price_query",
    "literal",
    "lowest_price",
    "offer_input",
    "pod_query",
    "root_field",
    "terminate_mutation",
]
