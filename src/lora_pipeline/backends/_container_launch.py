"""A job's :class:`PodSpec` as what a container backend sends: env, ``dockerArgs``, host CUDA filter.

Transport-independent: RunPod's GraphQL and REST paths both call :func:`container_launch`, so the names, the
bootstrap and the command come from one place (:mod:`lora_pipeline.pod.launch`) whatever carries them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._exceptions import ConfigError
from ..pod import launch
from .base import PodSpec
from .images import read_image


@dataclass(frozen=True)
class ContainerLaunch:
    env: dict[str, str]
    docker_args: str
    allowed_cuda_versions: list[str] | None


def container_launch(spec: PodSpec) -> ContainerLaunch:
    """The container's env and command for ``spec``.

    With a package (what :meth:`Jobs.deploy <lora_pipeline.resources.jobs.Jobs.deploy>` always sends) the
    container runs the bootstrap; a spec with an explicit ``command`` runs that; a spec with neither runs the
    image's own command with the job's env (direct use of the backend).

    Raises:
        ConfigError: the user's env or secrets would be refused by :func:`launch.check_user_env`.
    """
    problems = launch.check_user_env(spec.user_env, spec.secrets)
    if problems:
        raise ConfigError("; ".join(problems), argument="env")
    cuda = read_image(spec.image).allowed_cuda_versions()
    if spec.package is not None and not spec.command:
        env = launch.container_env(
            job_env=spec.env,
            max_runtime_seconds=spec.max_runtime_seconds,
            wheel_object=spec.package.wheel_object,
            wheel_sha256=spec.package.wheel_sha256,
            requirement=spec.package.requirement,
            user_env=spec.user_env,
            secrets=spec.secrets,
        )
        return ContainerLaunch(env, launch.docker_args(launch.container_command()), cuda)
    references = {name: launch.secret_reference(secret) for name, secret in spec.secrets.items()}
    env = {**spec.user_env, **references, **spec.env}
    return ContainerLaunch(env, launch.docker_args(spec.command) if spec.command else "", cuda)


__all__ = ["ContainerLaunch", "container_launch"]
