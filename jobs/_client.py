"""`AsyncClient`: the async client for one Gradio app."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import anyio
import httpx
from anyio.abc import TaskGroup

from ._background import BackgroundTaskGroup
from ._connect import AppConnection, ConnectOptions, open_app, read_schema
from ._files import Downloader, Uploader, wrap_files
from ._http.client import HttpClient
from ._job import AsyncJob, Postprocess
from ._options import http_options, pick_download_target, pick_token
from ._protocol.limits import Limits
from ._protocol.schema import AppSchema, Endpoint
from ._session import Session
from ._submit import callbacks_of, make_join, make_postprocess, resolve_duplicate
from ._view import render_api

if TYPE_CHECKING:
    from ._jobsession import JobSession
    from ._wssession import WsDialer

__all__ = ["AsyncClient"]

log = logging.getLogger("jobs")

DownloadFiles = str | os.PathLike[str] | bool

#: Every connection a batch used stays warm: their number is bounded by the jobs in
#: flight (each holds one stream) plus the joins being sent, so no cap is needed, and a
#: cap below the concurrency would close connections only to open them again. Idle ones
#: are dropped before uvicorn's 5 s keep-alive timeout, so a request rarely meets a
#: connection the server is closing. (The same holds for the aiohttp pool `_http.aio` makes;
#: these limits are for httpx's own transport: proxied URLs, and loops other than
#: asyncio.)
_POOL_LIMITS = httpx.Limits(
    max_connections=None, max_keepalive_connections=None, keepalive_expiry=4.0
)


class AsyncClient:
    """An async client for one Gradio app (a URL or a Hugging Face Space id).

    ```python
    async with AsyncClient("http://127.0.0.1:7860") as client:
        print(await client.predict(4, "add", 5, api_name="/predict"))
        job = client.submit(text="hello")          # runs in the background
        async for partial in job: ...
    ```

    `hf_token` (else `HF_TOKEN`, else the saved Hugging Face login) is sent, as
    `token_header: Bearer ...`, to Hugging Face hosts only (`huggingface.co`,
    `*.hf.space`) plus any host named in `token_hosts`; never elsewhere, never logged.
    `auth=(user, password)` logs in to a password-protected app.

    `limits` bounds what the app may send and how long the client waits for it (the
    longest event-stream message, JSON answer and downloaded file; connect and read
    timeouts): see `jobs.Limits` for the defaults. Over a limit: `LimitExceeded`.

    `src` may also be given as `space=`, and `api_name=` sets the endpoint used when a
    call names none (both as gradio_client's guide writes them). gradio_client's
    arguments mean what they mean there: `token` (= `hf_token`), `max_workers` (at most
    that many jobs in flight, the rest wait here; default: no cap), `verbose` (print
    "Loaded as API" and the Space's stage; default off), `httpx_kwargs` (options for the
    HTTP client; its `timeout` applies to ordinary requests, not the event stream),
    `download_files` / `output_dir`, `ssl_verify`, `analytics_enabled` (nothing is ever
    sent but to the app) and `oauth_token` (sent to endpoints taking a `gr.OAuthToken`).

    Every gradio from 3.0 on is spoken (`schema.protocol` says how). On gradio 3.x (`ws`)
    a job has a websocket of its own, and what the protocol cannot do is done the nearest
    way: `cancel()` closes the job's socket and resets its function in its session (a
    queued job leaves the queue, a generator stops after its step; a running plain
    function finishes on the app, `cancel(force=True)` drops its result here), and URL
    file inputs are fetched here and sent inline (README, "Gradio versions").

    The constructor does no I/O; `await AsyncClient.connect(src)` or `async with` opens
    the connection, reads the app's API and keeps jobs running until `aclose()`. Close it
    from the task that opened it (or use `async with`).
    """

    def __init__(
        self,
        src: str | None = None,
        token: str | None = None,
        max_workers: int | None = None,
        verbose: bool = False,
        auth: tuple[str, str] | None = None,
        httpx_kwargs: Mapping[str, Any] | None = None,
        *,
        space: str | None = None,
        api_name: str | None = None,
        hf_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
        download_files: DownloadFiles = True,
        output_dir: str | os.PathLike[str] | None = None,
        token_header: str = "X-HF-Authorization",
        hub_endpoint: str | None = None,
        space_deadline: float = 600.0,
        on_space_stage: Callable[[str], None] | None = None,
        token_hosts: Sequence[str] = (),
        ssl_verify: bool = True,
        analytics_enabled: bool = True,
        oauth_token: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        # `space=` and `src=` are both spellings gradio_client's guide uses.
        if (src is None) == (space is None):
            raise TypeError("give the app as `src` (a URL or Space id) or `space`, not both")
        if max_workers is not None and max_workers < 1:
            raise TypeError(
                f"max_workers must be at least 1 (or None for no cap), not {max_workers}"
            )
        self.src: str = src if src is not None else space  # type: ignore[assignment]
        #: The endpoint used when a call names none (gradio_client's guide passes it here).
        self.default_api_name = api_name
        self.verbose = verbose
        # Nothing is ever sent anywhere but the app: there is no telemetry to turn off.
        self.analytics_enabled = analytics_enabled
        self._ssl_verify = ssl_verify
        self._http_options = http_options(httpx_kwargs, http=http)
        self._oauth_token = oauth_token
        self._auth = auth
        self._limiter = anyio.CapacityLimiter(max_workers) if max_workers else None
        self._options = ConnectOptions(
            hf_token=pick_token(token, hf_token),
            auth=auth,
            headers=dict(headers or {}),
            token_header=token_header,
            hub_endpoint=hub_endpoint,
            space_deadline=space_deadline,
            on_space_stage=on_space_stage or (print if verbose else None),
            token_hosts=tuple(token_hosts),
            limits=limits or Limits(),
            request_timeout=self._http_options.timeout,
        )
        self._http = http
        self._download_files = pick_download_target(download_files, output_dir)
        self._stack: contextlib.AsyncExitStack | None = None
        self._app: AppConnection | None = None
        self._task_group: TaskGroup | None = None
        self._session: JobSession | None = None
        self._uploader: Uploader | None = None
        self._downloader: Downloader | None = None
        self._parent: AsyncClient | None = None
        self._dialer: WsDialer | None = None

    def __repr__(self) -> str:
        state = "open" if self._app is not None else "not connected"
        url = self._app.app_http.base_url if self._app is not None else self.src
        return f"<AsyncClient {url!r} {state}>"

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    async def connect(cls, src: str, **options: Any) -> AsyncClient:
        """Connect to `src` and read its API. Same options as the constructor."""
        client = cls(src, **options)
        await client._open()
        return client

    @classmethod
    async def duplicate(
        cls,
        from_id: str,
        to_id: str | None = None,
        *,
        hf_token: str | None = None,
        private: bool = True,
        hardware: str | None = None,
        secrets: Mapping[str, str] | None = None,
        sleep_timeout: int | None = 5,
        hub_endpoint: str | None = None,
        **options: Any,
    ) -> AsyncClient:
        """Duplicate the Space `from_id` into the token owner's account, or attach to the
        duplicate made earlier, wait until it runs, and connect to it. `sleep_timeout` is
        in minutes; hardware and secrets are set when asked."""
        target, token = await resolve_duplicate(
            from_id,
            to_id,
            hf_token=hf_token,
            hub_endpoint=hub_endpoint,
            private=private,
            hardware=hardware,
            secrets=secrets,
            sleep_timeout=sleep_timeout,
        )
        return await cls.connect(target, hf_token=token, hub_endpoint=hub_endpoint, **options)

    async def __aenter__(self) -> AsyncClient:
        if self._app is None:
            await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _open(self) -> None:
        if self._parent is not None:
            raise RuntimeError("a session view is opened by its parent client")
        stack = contextlib.AsyncExitStack()
        try:
            http = self._http
            if http is None:
                kwargs = {
                    "limits": _POOL_LIMITS,
                    "follow_redirects": True,
                    "verify": self._ssl_verify,
                    **self._http_options.client_kwargs,
                }
                # aiohttp, the slowest of the client's imports, loads when a client opens.
                from ._http.aio import aiohttp_transport

                transport = aiohttp_transport(verify=kwargs["verify"], cert=kwargs.get("cert"))
                if transport is not None:
                    kwargs["transport"] = transport
                http = await stack.enter_async_context(HttpClient(**kwargs))
            self._app = await open_app(http, self.src, self._options)
            if self.verbose:
                print(f"Loaded as API: {self._app.app_http.base_url}/ ✔")
            if self._app.schema.protocol == "ws":
                from ._wssession import WsDialer

                # Websockets for a gradio 3.x app, closed after the jobs that use them
                # (the exit stack unwinds in reverse).
                self._dialer = WsDialer(verify=self._ssl_verify)
                stack.push_async_callback(self._dialer.aclose)
            self._task_group = await stack.enter_async_context(BackgroundTaskGroup())
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._session = self._new_session()
        self._uploader = Uploader(self._app.app_http, self._app.schema.max_file_size)
        self._downloader = self._make_downloader(self._download_files)

    async def aclose(self) -> None:
        """Cancel jobs still running, close streams and the connection pool it opened."""
        if self._parent is not None:
            if self._session is not None:
                self._session.close()
            return
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        await stack.aclose()

    # -- the API ---------------------------------------------------------------------

    @property
    def schema(self) -> AppSchema:
        """The app's API (endpoints, parameters, returns, limits)."""
        return self._require().schema

    @property
    def url(self) -> str:
        return self._require().app_http.base_url

    @property
    def session_hash(self) -> str:
        """The session carried across calls of stateful endpoints."""
        self._require()
        assert self._session is not None
        return self._session.hash

    def endpoint(self, api_name: str | None = None, fn_index: int | None = None) -> Endpoint:
        return self.schema.endpoint(api_name, fn_index)

    def submit(
        self,
        *args: Any,
        api_name: str | None = None,
        fn_index: int | None = None,
        headers: Mapping[str, str] | None = None,
        result_callbacks: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        **kwargs: Any,
    ) -> AsyncJob:
        """Start a call and return its `AsyncJob` at once. Arguments are checked (names,
        required ones, local files) before anything is sent; an `ArgumentError` is raised
        here, everything that happens later is raised by `job.result()`. `headers` are
        sent with this job's `queue/join` request, over the client's own."""
        if api_name is None and fn_index is None:
            api_name = self.default_api_name
        endpoint = self.schema.endpoint(api_name, fn_index)
        return self.submit_values(
            endpoint,
            endpoint.bind(args, kwargs),
            result_callbacks=result_callbacks,
            headers=headers,
        )

    def submit_values(
        self,
        endpoint: Endpoint,
        values: Mapping[str, Any],
        *,
        result_callbacks: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        download_to: Path | None = None,
        session: JobSession | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncJob:
        """Submit already bound values (parameter name -> value). For batch drivers:
        `download_to` puts this job's output files in their own folder, and `session`
        runs it in a given session instead of the default choice."""
        self._require()
        assert self._task_group is not None
        wrapped = self._checked_inputs(endpoint, values)
        session = session or self._session_for(endpoint)
        job = AsyncJob(
            endpoint=endpoint,
            session=session,
            postprocess=self._postprocessor(download_to),
            callbacks=callbacks_of(result_callbacks),
            limiter=self._limiter,
        )
        self._task_group.start_soon(job.run, self._joiner(job, wrapped, headers))
        return job

    def _checked_inputs(self, endpoint: Endpoint, values: Mapping[str, Any]) -> dict[str, Any]:
        """Plain paths wrapped as files where the endpoint takes files, and every local
        file checked (exists, not over the app's limit) before anything is sent."""
        assert self._uploader is not None
        wrapped = {p.name: wrap_files(p, values[p.name]) for p in endpoint.parameters}
        self._uploader.check(wrapped)
        return wrapped

    def _session_for(self, endpoint: Endpoint) -> JobSession:
        # Stateful endpoints share the client's session; the rest get their own, so a
        # cancel or a lost stream touches only that job.
        if endpoint.uses_state:
            assert self._session is not None
            return self._session
        return self._new_session(heartbeat=False, exclusive=True)

    def _postprocessor(self, download_to: Path | None) -> Postprocess:
        downloader = (
            self._make_downloader(download_to) if download_to is not None else self._downloader
        )
        return make_postprocess(downloader)

    def _joiner(
        self, job: AsyncJob, wrapped: Mapping[str, Any], headers: Mapping[str, str] | None
    ) -> Callable[[], Awaitable[str]]:
        """The job's `queue/join`: uploads its files, then sends it; returns the event id."""
        assert self._uploader is not None
        oauth = self._oauth_token if job.endpoint.oauth_token is not None else None
        return make_join(job, wrapped, self._uploader, headers=headers, oauth_token=oauth)

    async def predict(
        self,
        *args: Any,
        api_name: str | None = None,
        fn_index: int | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call the endpoint and return its value (a tuple when it has several outputs;
        a generator's final value)."""
        job = self.submit(*args, api_name=api_name, fn_index=fn_index, headers=headers, **kwargs)
        try:
            return await job.result()
        except BaseException:
            if not job.done():
                with anyio.CancelScope(shield=True):
                    await job.cancel(force=True)
            raise

    def view_api(
        self,
        all_endpoints: bool | None = None,
        print_info: bool = True,
        return_format: Literal["dict", "str"] | None = None,
    ) -> dict[str, Any] | str | None:
        """Print (and optionally return) each named endpoint with its parameters (name,
        type, component, required or default) and returns."""
        text, as_dict = render_api(self.schema, all_endpoints=bool(all_endpoints))
        if print_info:
            print(text)
        if return_format == "dict":
            return as_dict
        if return_format == "str":
            return text
        return None

    async def ping(self) -> float:
        """Check that the app answers (`GET /config`); returns the round trip in seconds.
        Raises `ConnectionFailed` (or another `JobsError`) when it does not."""
        app = self._require()
        started = anyio.current_time()
        await app.app_http.get_json("config", prefixed=False)
        return anyio.current_time() - started

    async def reload(self) -> AppSchema:
        """Read the app's API again (`/config` and its info route) and use it from now on;
        returns it. An app restarted at the same address (a redeploy, an edit) may serve
        another API: jobs submitted after this bind their arguments to the new one. Files
        uploaded before are uploaded again (a restarted app may have lost them).
        Raises `ConnectionFailed` (or another `JobsError`) when the app does not answer."""
        app = self._require()
        if self._parent is not None:
            raise RuntimeError("reload the client a session view was made from")
        schema = await read_schema(app.app_http, auth=self._auth)
        self._uploader = Uploader(app.app_http, schema.max_file_size)
        if schema == app.schema:
            return app.schema  # the same API keeps its object: what is keyed on it stays
        self._app = dataclasses.replace(app, schema=schema)
        return schema

    def reset_session(self) -> None:
        """Start a fresh session: stateful endpoints forget what earlier calls stored."""
        self._require()
        if self._session is not None:
            self._session.close()
        self._session = self._new_session()

    def new_session(self, *, heartbeat: bool = True) -> AsyncClient:
        """A view of this client with a session of its own. It shares the connection pool,
        the API schema and the upload cache and costs nothing to make. `aclose()` on a view
        only ends its session's heartbeat (held for apps that ask for one, while the
        session is in use; `heartbeat=False` for a session used by a single job)."""
        self._require()
        view = object.__new__(AsyncClient)
        view.__dict__.update(self.__dict__)
        view._parent = self
        view._stack = None
        view._session = self._new_session(heartbeat=heartbeat)
        return view

    # -- internals -------------------------------------------------------------------

    def _require(self) -> AppConnection:
        if self._app is None:
            raise RuntimeError(
                "the client is not connected: use `await AsyncClient.connect(src)` or "
                "`async with AsyncClient(src) as client`"
            )
        return self._app

    def _new_session(self, *, heartbeat: bool = True, exclusive: bool = False) -> JobSession:
        app = self._require()
        assert self._task_group is not None
        if app.schema.protocol == "ws":
            from ._wssession import WsDialer, WsSession

            if self._dialer is None:  # an app that became 3.x on reload
                self._dialer = WsDialer(verify=self._ssl_verify)
            # Same methods, another wire (gradio 3.x): see `_wssession`.
            return WsSession(app.app_http, self._task_group, self._dialer, exclusive=exclusive)
        return Session(
            app.app_http,
            self._task_group,
            heartbeat=heartbeat and app.schema.connect_heartbeat,
            exclusive=exclusive,
            dialect=app.schema.dialect,
        )

    def _make_downloader(self, target: DownloadFiles | Path) -> Downloader | None:
        if target is False:
            return None
        app = self._require()
        max_bytes = app.app_http.limits.max_download_bytes
        if target is True:
            folder = Path(tempfile.gettempdir()) / "spacerun-downloads"
            return Downloader(app.app_http, folder, max_bytes=max_bytes)
        return Downloader(app.app_http, Path(os.fspath(target)), max_bytes=max_bytes)
