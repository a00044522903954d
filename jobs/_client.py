"""`AsyncClient`: the async client for one Gradio app."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import anyio
import httpx
from anyio.abc import TaskGroup

from ._background import BackgroundTaskGroup
from ._connect import AppConnection, open_app
from ._files import Downloader, Uploader, wrap_files
from ._job import AsyncJob
from ._schema import AppSchema, Endpoint
from ._session import Session
from ._view import render_api

__all__ = ["AsyncClient"]

log = logging.getLogger("jobs")

DownloadFiles = str | os.PathLike[str] | bool

#: Every connection a batch used stays warm: their number is bounded by the jobs in
#: flight (each holds one stream) plus the joins being sent, so no cap is needed, and a
#: cap below the concurrency would close connections only to open them again. Idle ones
#: are dropped before uvicorn's 5 s keep-alive timeout, so a request rarely meets a
#: connection the server is closing.
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

    `src` may also be given as `space=`, and `api_name=` sets the endpoint used when a
    call names none (both as gradio_client's guide writes them). `verbose` is accepted
    for gradio_client compatibility and prints nothing.

    The constructor does no I/O; `await AsyncClient.connect(src)` or `async with` opens
    the connection, reads the app's API and keeps jobs running until `aclose()`. Close it
    from the task that opened it (or use `async with`).
    """

    def __init__(
        self,
        src: str | None = None,
        *,
        space: str | None = None,
        api_name: str | None = None,
        hf_token: str | None = None,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
        download_files: DownloadFiles = True,
        token_header: str = "X-HF-Authorization",
        hub_endpoint: str | None = None,
        space_deadline: float = 600.0,
        on_space_stage: Callable[[str], None] | None = None,
        token_hosts: Sequence[str] = (),
        ssl_verify: bool = True,
        verbose: bool = False,
    ) -> None:
        # `space=` and `src=` are both spellings gradio_client's guide uses.
        if (src is None) == (space is None):
            raise TypeError("give the app as `src` (a URL or Space id) or `space`, not both")
        self.src: str = src if src is not None else space  # type: ignore[assignment]
        #: The endpoint used when a call names none (gradio_client's guide passes it here).
        self.default_api_name = api_name
        self._ssl_verify = ssl_verify
        self._options = dict(
            hf_token=hf_token,
            auth=auth,
            headers=dict(headers or {}),
            token_header=token_header,
            hub_endpoint=hub_endpoint,
            space_deadline=space_deadline,
            on_space_stage=on_space_stage,
            token_hosts=tuple(token_hosts),
        )
        self._http = http
        self._download_files = download_files
        self._stack: contextlib.AsyncExitStack | None = None
        self._app: AppConnection | None = None
        self._task_group: TaskGroup | None = None
        self._session: Session | None = None
        self._uploader: Uploader | None = None
        self._downloader: Downloader | None = None
        self._parent: AsyncClient | None = None

    def __repr__(self) -> str:
        state = "open" if self._app is not None else "not connected"
        url = self._app.transport.base_url if self._app is not None else self.src
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
                http = await stack.enter_async_context(
                    httpx.AsyncClient(
                        limits=_POOL_LIMITS,
                        follow_redirects=True,
                        verify=self._ssl_verify,
                    )
                )
            self._app = await open_app(http, self.src, **self._options)  # type: ignore[arg-type]
            self._task_group = await stack.enter_async_context(BackgroundTaskGroup())
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._session = self._new_session()
        self._uploader = Uploader(self._app.transport, self._app.schema.max_file_size)
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
        return self._require().transport.base_url

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
        result_callbacks: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        **kwargs: Any,
    ) -> AsyncJob:
        """Start a call and return its `AsyncJob` at once. Arguments are checked (names,
        required ones, local files) before anything is sent; an `ArgumentError` is raised
        here, everything that happens later is raised by `job.result()`."""
        if api_name is None and fn_index is None:
            api_name = self.default_api_name
        endpoint = self.schema.endpoint(api_name, fn_index)
        return self.submit_values(
            endpoint, endpoint.bind(args, kwargs), result_callbacks=result_callbacks
        )

    def submit_values(
        self,
        endpoint: Endpoint,
        values: Mapping[str, Any],
        *,
        result_callbacks: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        download_to: Path | None = None,
        session: Session | None = None,
    ) -> AsyncJob:
        """Submit already bound values (parameter name -> value). For batch drivers:
        `download_to` puts this job's output files in their own folder, and `session`
        runs it in a given session instead of the default choice."""
        self._require()
        assert self._uploader is not None and self._task_group is not None
        wrapped = {p.name: wrap_files(p, values[p.name]) for p in endpoint.parameters}
        self._uploader.check(wrapped)
        if session is None:
            # Stateful endpoints share the client's session; the rest get their own, so
            # a cancel or a lost stream touches only that job.
            session = (
                self._session
                if endpoint.uses_state
                else self._new_session(heartbeat=False, exclusive=True)
            )
        assert session is not None
        downloader = (
            self._make_downloader(download_to) if download_to is not None else self._downloader
        )
        callbacks: Sequence[Callable[..., Any]]
        if result_callbacks is None:
            callbacks = ()
        elif callable(result_callbacks):
            callbacks = (result_callbacks,)
        else:
            callbacks = tuple(result_callbacks)

        async def postprocess(values_out: list[Any]) -> list[Any]:
            if downloader is None:
                return values_out
            return [await downloader.localize(v) for v in values_out]

        job = AsyncJob(
            endpoint=endpoint, session=session, postprocess=postprocess, callbacks=callbacks
        )
        uploader = self._uploader

        async def join() -> str:
            uploaded = await uploader.upload_all(wrapped)
            body = {
                "data": endpoint.payload(uploaded),
                "fn_index": endpoint.fn_index,
                "session_hash": session.hash,
                "event_data": None,
                "trigger_id": None,
            }
            return await session.join(job, body, headers={"x-gradio-user": "api"})

        self._task_group.start_soon(job.run, join)
        return job

    async def predict(
        self,
        *args: Any,
        api_name: str | None = None,
        fn_index: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call the endpoint and return its value (a tuple when it has several outputs;
        a generator's final value)."""
        job = self.submit(*args, api_name=api_name, fn_index=fn_index, **kwargs)
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
        await app.transport.get_json("config", prefixed=False)
        return anyio.current_time() - started

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

    def _new_session(self, *, heartbeat: bool = True, exclusive: bool = False) -> Session:
        app = self._require()
        assert self._task_group is not None
        return Session(
            app.transport,
            self._task_group,
            heartbeat=heartbeat and app.schema.connect_heartbeat,
            exclusive=exclusive,
        )

    def _make_downloader(self, target: DownloadFiles | Path) -> Downloader | None:
        if target is False:
            return None
        app = self._require()
        if target is True:
            folder = Path(tempfile.gettempdir()) / "spacerun-downloads"
            return Downloader(app.transport, folder)
        return Downloader(app.transport, Path(os.fspath(target)))


async def resolve_duplicate(
    from_id: str,
    to_id: str | None,
    *,
    hf_token: str | None,
    hub_endpoint: str | None,
    private: bool,
    hardware: str | None,
    secrets: Mapping[str, str] | None,
    sleep_timeout: int | None,
) -> tuple[str, str | None]:
    """Make (or find) the duplicate; returns its Space id and the token to reach it."""
    from ._spaces import duplicate_space, hf_token_from_env

    token = hf_token_from_env(hf_token)
    target = await duplicate_space(
        from_id,
        to_id,
        token=token,
        endpoint=hub_endpoint,
        private=private,
        hardware=hardware,
        secrets=secrets,
        sleep_timeout=sleep_timeout,
    )
    return target, token
