"""The root clients: :class:`LoraPipeline` (sync) and :class:`AsyncLoraPipeline` (async).

Both hold one :class:`~lora_pipeline._base_client.ClientCore` (settings, role, per-role supabase clients) and
expose the same lazy resource namespaces. Resource logic is written once as plans; the two clients differ only
in the executor that performs them (see :mod:`lora_pipeline._ops`).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from . import _auth
from ._auth import Session
from ._base_client import ClientCore
from ._config import Settings
from ._exceptions import ConfigError
from ._executor import AsyncExecutor, SyncExecutor
from ._logging import setup_from_env
from ._roles import Role

if TYPE_CHECKING:
    from .resources._async.artifacts import AsyncArtifacts
    from .resources._async.baselines import AsyncBaselines
    from .resources._async.costs import AsyncCosts
    from .resources._async.datasets import AsyncDatasets
    from .resources._async.gates import AsyncGates
    from .resources._async.jobs import AsyncJobs
    from .resources._async.metrics import AsyncMetrics
    from .resources._async.notifications import AsyncNotifications
    from .resources._async.runs import AsyncRuns
    from .resources._async.tokens import AsyncTokens
    from .resources.artifacts import Artifacts
    from .resources.baselines import Baselines
    from .resources.costs import Costs
    from .resources.datasets import Datasets
    from .resources.gates import Gates
    from .resources.jobs import Jobs
    from .resources.metrics import Metrics
    from .resources.notifications import Notifications
    from .resources.runs import Runs
    from .resources.tokens import Tokens

_DOC_ARGS = """
    Args:
        url: Supabase project URL. Env: ``LORA_PIPELINE_URL``, ``SUPABASE_URL``, ``NEXT_PUBLIC_SUPABASE_URL``.
        anon_key: anon key. Env: ``LORA_PIPELINE_ANON_KEY``, ``SUPABASE_ANON_KEY``,
            ``NEXT_PUBLIC_SUPABASE_ANON_KEY``.
        service_role_key: service-role key (server only). Env: ``LORA_PIPELINE_SERVICE_ROLE_KEY``,
            ``SUPABASE_SERVICE_ROLE_KEY``, ``SUPABASE_SERVICE_KEY``.
        access_token: a signed-in user's access token (role USER). Env: ``LORA_PIPELINE_ACCESS_TOKEN``.
        role: ``Role.SERVICE``, ``Role.ANON`` or ``Role.USER``. When omitted: USER if an access token is given,
            else the role of the only key present; with both keys, choose explicitly. Env: ``LORA_PIPELINE_ROLE``.
        timeout: seconds per HTTP response (default 60). Env: ``LORA_PIPELINE_TIMEOUT``.
        max_retries: retries of idempotent requests on transient failures (default 2).
        runpod_api_key, app_url: see :class:`~lora_pipeline.Settings`.

    Raises:
        ConfigError: a missing or malformed setting, or a key of the wrong role.
"""


_SIGN_IN_SETTINGS = ("url", "anon_key", "timeout", "max_retries", "runpod_api_key", "app_url")


def _sign_in_target(options: dict[str, Any]) -> tuple[str, str, float]:
    """URL, anon key and timeout for a sign-in: the arguments given, else the environment."""
    settings = Settings.resolve(**{k: options[k] for k in _SIGN_IN_SETTINGS if options.get(k) is not None})
    return settings.require_url(), settings.require_secret("anon_key"), settings.timeout


class _RootClient:
    _core: ClientCore
    _executor: SyncExecutor | AsyncExecutor
    _session: Session | None = None

    def __init__(
        self,
        *,
        url: str | None = None,
        anon_key: str | None = None,
        service_role_key: str | None = None,
        access_token: str | None = None,
        role: Role | str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        runpod_api_key: str | None = None,
        app_url: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        setup_from_env()
        if settings is None:
            settings = Settings.resolve(
                url=url,
                anon_key=anon_key,
                service_role_key=service_role_key,
                access_token=access_token,
                role=role,
                timeout=timeout,
                max_retries=max_retries,
                runpod_api_key=runpod_api_key,
                app_url=app_url,
            )
        self._core = ClientCore(settings)

    @property
    def settings(self) -> Settings:
        """The resolved settings (secrets masked in ``repr``)."""
        return self._core.settings

    @property
    def role(self) -> Role:
        """The key role every request of this client runs as."""
        return self._core.role

    @property
    def url(self) -> str:
        return self._core.url

    @property
    def user_id(self) -> str | None:
        """The signed-in user's id for role USER, else ``None``."""
        return self._core.caller_user_id()

    @property
    def session(self) -> Session | None:
        """The session of a client made by ``sign_in`` (renewed before it expires), else ``None``."""
        return self._session

    def _adopt(self, session: Session) -> None:
        """Switch to a renewed session's token: a new core, never a mutated one (see ``_base_client``). The
        executor takes the new core too, so a plan in progress (a long ``wait_for_completion``) goes on with it."""
        self._core = self._core.derive(access_token=session.access_token, role=Role.USER)
        self._session = session
        self._executor.core = self._core

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, role={self.role.value!r})"


class LoraPipeline(_RootClient):
    __doc__ = f"""Synchronous client for lora-pipeline.

    Example::

        lp = LoraPipeline.from_env()            # role from LORA_PIPELINE_ROLE or the keys present
        report = lp.datasets.validate("train.jsonl")
        dataset = lp.datasets.upload("train.jsonl", name="support-bot")
{_DOC_ARGS}"""

    _executor: SyncExecutor

    def __init__(
        self, *, _sleep: Callable[[float], None] | None = None, _clock: Callable[[], float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._sleep, self._clock = _sleep, _clock
        self._executor = self._make_executor()

    def _make_executor(self) -> SyncExecutor:
        return SyncExecutor(self._core, sleep=self._sleep, clock=self._clock)

    @classmethod
    def from_env(cls, **overrides: Any) -> LoraPipeline:
        """Build from the environment (see :data:`~lora_pipeline.ENV_NAMES`); ``overrides`` win."""
        return cls(**overrides)

    @classmethod
    def sign_in(cls, email: str, password: str, **options: Any) -> LoraPipeline:
        """Sign a user in with email and password and return a client acting as that user (role USER).

        The URL and anon key come from ``options`` or the environment, like :meth:`from_env`; the session is
        renewed with its refresh token shortly before the access token expires.

        Example::

            lp = LoraPipeline.sign_in("me@example.com", "my password")   # SUPABASE_URL, SUPABASE_ANON_KEY
            lp.datasets.list()

        Raises:
            AuthenticationError: wrong email or password, or an unconfirmed user.
            ConfigError: no URL or anon key.
        """
        url, anon_key, timeout = _sign_in_target(options)
        session = _auth.send(_auth.password_request(url, anon_key, email, password), timeout)
        options = {**options, "url": url, "anon_key": anon_key, "access_token": session.access_token}
        client = cls(**{**options, "role": Role.USER})
        client._session = session
        client._executor.before_call = client._before_request
        return client

    def refresh_session(self) -> Session:
        """Renew the signed-in session now (``sign_in`` clients do this on their own before expiry)."""
        if self._session is None:
            raise ConfigError("refresh_session needs a client made by LoraPipeline.sign_in(...)")
        request = _auth.refresh_request(self.url, self._core.key_for(Role.USER), self._session)
        self._adopt(_auth.send(request, self.settings.timeout))
        assert self._session is not None
        return self._session

    def _before_request(self) -> None:
        if self._session is None or not self._session.stale():
            return
        # One renewal at a time: a refresh token is single-use, a second thread would be refused with it.
        with self.__dict__.setdefault("_refresh_lock", threading.Lock()):
            if self._session.stale():
                self.refresh_session()

    def with_options(self, **changes: Any) -> LoraPipeline:
        """A copy with some settings replaced (``role``, ``access_token``, ``timeout``, ``max_retries``...).

        The original client is not changed and shares no mutable state with the copy.
        """
        clone = type(self).__new__(type(self))
        clone._core = self._core.derive(**changes)
        clone._sleep, clone._clock = self._sleep, self._clock
        clone._session = None  # the copy keeps the current token but never renews it: refresh tokens rotate
        clone._executor = clone._make_executor()
        return clone

    def close(self) -> None:
        """Close pooled HTTP connections."""
        self._core.close()

    def __enter__(self) -> LoraPipeline:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @cached_property
    def datasets(self) -> Datasets:
        """Validate, upload, list, download and delete datasets."""
        from .resources.datasets import Datasets

        return Datasets(self)

    @cached_property
    def tokens(self) -> Tokens:
        """Single-use dataset download tokens."""
        from .resources.tokens import Tokens

        return Tokens(self)

    @cached_property
    def jobs(self) -> Jobs:
        """Create, deploy, watch and cancel training jobs."""
        from .resources.jobs import Jobs

        return Jobs(self)

    @cached_property
    def metrics(self) -> Metrics:
        """Read a job's metrics: history, latest, final values, plots."""
        from .resources.metrics import Metrics

        return Metrics(self)

    @cached_property
    def baselines(self) -> Baselines:
        """Regression-gate conditions per model."""
        from .resources.baselines import Baselines

        return Baselines(self)

    @cached_property
    def gates(self) -> Gates:
        """Run regression gates against a finished job."""
        from .resources.gates import Gates

        return Gates(self)

    @cached_property
    def artifacts(self) -> Artifacts:
        """Trained adapters: list, download, sign, delete."""
        from .resources.artifacts import Artifacts

        return Artifacts(self)

    @cached_property
    def costs(self) -> Costs:
        """What jobs cost."""
        from .resources.costs import Costs

        return Costs(self)

    @cached_property
    def notifications(self) -> Notifications:
        """Job and gate notifications."""
        from .resources.notifications import Notifications

        return Notifications(self)

    @cached_property
    def runs(self) -> Runs:
        """Runs on your own machine: start / log / finish, list and compare."""
        from .resources.runs import Runs

        return Runs(self)


class AsyncLoraPipeline(_RootClient):
    __doc__ = f"""Asynchronous client for lora-pipeline; the same namespaces as :class:`LoraPipeline`.

    Example::

        async with AsyncLoraPipeline.from_env() as lp:
            jobs = await lp.jobs.list(status="running")
{_DOC_ARGS}"""

    _executor: AsyncExecutor

    def __init__(
        self,
        *,
        _sleep: Callable[[float], Awaitable[Any]] | None = None,
        _clock: Callable[[], float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._sleep, self._clock = _sleep, _clock
        self._executor = self._make_executor()

    def _make_executor(self) -> AsyncExecutor:
        return AsyncExecutor(self._core, sleep=self._sleep, clock=self._clock)

    @classmethod
    def from_env(cls, **overrides: Any) -> AsyncLoraPipeline:
        """Build from the environment (see :data:`~lora_pipeline.ENV_NAMES`); ``overrides`` win."""
        return cls(**overrides)

    @classmethod
    async def sign_in(cls, email: str, password: str, **options: Any) -> AsyncLoraPipeline:
        """Sign a user in and return a client acting as that user; see :meth:`LoraPipeline.sign_in`.

        Example::

            lp = await AsyncLoraPipeline.sign_in("me@example.com", "my password")
        """
        url, anon_key, timeout = _sign_in_target(options)
        session = await _auth.send_async(_auth.password_request(url, anon_key, email, password), timeout)
        options = {**options, "url": url, "anon_key": anon_key, "access_token": session.access_token}
        client = cls(**{**options, "role": Role.USER})
        client._session = session
        client._executor.before_call = client._before_request
        return client

    async def refresh_session(self) -> Session:
        """Renew the signed-in session now (``sign_in`` clients do this on their own before expiry)."""
        if self._session is None:
            raise ConfigError("refresh_session needs a client made by AsyncLoraPipeline.sign_in(...)")
        request = _auth.refresh_request(self.url, self._core.key_for(Role.USER), self._session)
        self._adopt(await _auth.send_async(request, self.settings.timeout))
        assert self._session is not None
        return self._session

    async def _before_request(self) -> None:
        if self._session is not None and self._session.stale():
            await self.refresh_session()

    def with_options(self, **changes: Any) -> AsyncLoraPipeline:
        """A copy with some settings replaced; the original is not changed."""
        clone = type(self).__new__(type(self))
        clone._core = self._core.derive(**changes)
        clone._sleep, clone._clock = self._sleep, self._clock
        clone._session = None  # the copy keeps the current token but never renews it: refresh tokens rotate
        clone._executor = clone._make_executor()
        return clone

    async def close(self) -> None:
        """Close pooled HTTP connections."""
        await self._core.aclose()

    async def __aenter__(self) -> AsyncLoraPipeline:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @cached_property
    def datasets(self) -> AsyncDatasets:
        from .resources._async.datasets import AsyncDatasets

        return AsyncDatasets(self)

    @cached_property
    def tokens(self) -> AsyncTokens:
        from .resources._async.tokens import AsyncTokens

        return AsyncTokens(self)

    @cached_property
    def jobs(self) -> AsyncJobs:
        from .resources._async.jobs import AsyncJobs

        return AsyncJobs(self)

    @cached_property
    def metrics(self) -> AsyncMetrics:
        from .resources._async.metrics import AsyncMetrics

        return AsyncMetrics(self)

    @cached_property
    def baselines(self) -> AsyncBaselines:
        from .resources._async.baselines import AsyncBaselines

        return AsyncBaselines(self)

    @cached_property
    def gates(self) -> AsyncGates:
        from .resources._async.gates import AsyncGates

        return AsyncGates(self)

    @cached_property
    def artifacts(self) -> AsyncArtifacts:
        from .resources._async.artifacts import AsyncArtifacts

        return AsyncArtifacts(self)

    @cached_property
    def costs(self) -> AsyncCosts:
        from .resources._async.costs import AsyncCosts

        return AsyncCosts(self)

    @cached_property
    def notifications(self) -> AsyncNotifications:
        from .resources._async.notifications import AsyncNotifications

        return AsyncNotifications(self)

    @cached_property
    def runs(self) -> AsyncRuns:
        from .resources._async.runs import AsyncRuns

        return AsyncRuns(self)


__all__ = ["AsyncLoraPipeline", "LoraPipeline"]
