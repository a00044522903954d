"""The blocking facade: `Client` and `Job`, thin wrappers over the async core run on one
event-loop thread (an anyio blocking portal). No logic of their own lives here."""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import anyio
from anyio.from_thread import BlockingPortal

from ._client import AsyncClient
from ._job import AsyncJob, JobTimings
from ._protocol.schema import AppSchema, Endpoint
from ._protocol.status import StatusUpdate
from ._submit import resolve_duplicate
from .errors import JobsError, JobTimeout

__all__ = ["Client", "Job"]


@contextlib.contextmanager
def _daemon_portal() -> Iterator[BlockingPortal]:
    """An event loop in a daemon thread, reached through a portal. anyio's own portal
    thread is not a daemon, so a client never closed would keep Python from exiting."""
    ready = threading.Event()
    portals: list[BlockingPortal] = []

    async def serve() -> None:
        async with BlockingPortal() as portal:
            portals.append(portal)
            ready.set()
            await portal.sleep_until_stopped()

    thread = threading.Thread(target=anyio.run, args=(serve,), name="jobs-client", daemon=True)
    thread.start()
    ready.wait()
    portal = portals[0]
    try:
        yield portal
    finally:
        portal.call(portal.stop)
        thread.join()


class Job(concurrent.futures.Future[Any]):
    """A submitted call (blocking API), and a `concurrent.futures.Future` as gradio_client's
    `Job` is: `concurrent.futures.wait(jobs)`, `as_completed(jobs)`, `add_done_callback`
    and `exception()` work. `result()` waits; iterate it for a generator's outputs as they
    arrive (a job that fails ends the loop, and `result()` raises its error). For a
    generator, `result()` returns the final value. Done callbacks run on the client's
    event-loop thread: keep them short."""

    def __init__(self, job: AsyncJob, portal: BlockingPortal) -> None:
        super().__init__()
        self._job = job
        self._portal = portal
        self.set_running_or_notify_cancel()

    @classmethod
    def wrap(cls, job: AsyncJob, portal: BlockingPortal) -> Job:
        """The blocking handle of `job`; call on the event loop (the portal's thread)."""
        handle = cls(job, portal)
        job.add_done_listener(handle._settle)
        return handle

    def _settle(self, job: AsyncJob) -> None:
        if job.error is not None:
            self.set_exception(job.error)
        else:
            self.set_result(job.result_now())

    def __repr__(self) -> str:
        return repr(self._job).replace("AsyncJob", "Job", 1)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the value (a tuple for several outputs). Raises the job's error,
        `JobTimeout` (a `TimeoutError`) after `timeout` seconds, or `JobCancelled` (a
        `concurrent.futures.CancelledError`)."""
        try:
            return super().result(timeout)
        except concurrent.futures.TimeoutError as exc:
            if isinstance(exc, JobTimeout):
                raise
            raise JobTimeout(
                f"{self._job.endpoint.display_name} did not finish within {timeout:g} s "
                f"(status {self._job.status().code.value}); it keeps running — cancel() "
                "stops it"
            ) from None

    def status(self) -> StatusUpdate:
        return self._job.status()

    def outputs(self) -> list[Any]:
        return self._job.outputs()

    def cancel(self, *, force: bool = False) -> bool:
        """True if the job will not produce a result (see `AsyncJob.cancel`)."""
        return self._portal.call(lambda: self._job.cancel(force=force))

    @property
    def event_id(self) -> str | None:
        return self._job.event_id

    @property
    def error(self) -> JobsError | None:
        return self._job.error

    @property
    def timings(self) -> JobTimings:
        return self._job.timings

    def __iter__(self) -> Iterator[Any]:
        index = 0
        while True:
            more, value = self._portal.call(self._job.wait_output, index)
            if not more:
                return
            yield value
            index += 1


class Client:
    """A blocking client for one Gradio app, with gradio_client's surface.

    ```python
    client = Client("http://127.0.0.1:7860")      # or a Space id: "owner/name"
    client.predict(num1=4, operation="add", num2=5, api_name="/predict")
    job = client.submit("Hello", api_name="/predict")
    job.result()
    client.close()
    ```
    Options are those of `AsyncClient`. Runs one background event-loop thread.
    """

    def __init__(self, src: str | None = None, *args: Any, **options: Any) -> None:
        # Built first: bad arguments raise before a thread starts.
        async_client = AsyncClient(src, *args, **options)
        self._stack = contextlib.ExitStack()
        try:
            self._portal = self._stack.enter_context(_daemon_portal())
            self._async = self._stack.enter_context(
                self._portal.wrap_async_context_manager(async_client)
            )
        except BaseException:
            self._stack.close()
            raise
        # gradio_client users rarely close their clients: close at exit, politely.
        atexit.register(self.close)

    @classmethod
    def duplicate(
        cls,
        from_id: str,
        to_id: str | None = None,
        *,
        hf_token: str | None = None,
        private: bool = True,
        hardware: str | None = None,
        secrets: dict[str, str] | None = None,
        sleep_timeout: int | None = 5,
        hub_endpoint: str | None = None,
        **options: Any,
    ) -> Client:
        """Duplicate the Space `from_id` into the token owner's account (or attach to the
        duplicate made earlier) and connect to it. See `AsyncClient.duplicate`."""
        target, token = anyio.run(
            functools.partial(
                resolve_duplicate,
                from_id,
                to_id,
                hf_token=hf_token,
                hub_endpoint=hub_endpoint,
                private=private,
                hardware=hardware,
                secrets=secrets,
                sleep_timeout=sleep_timeout,
            )
        )
        return cls(target, hf_token=token, hub_endpoint=hub_endpoint, **options)

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncClient", "Client", 1)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel running jobs and close connections and the background thread."""
        atexit.unregister(self.close)
        self._stack.close()

    @property
    def schema(self) -> AppSchema:
        return self._async.schema

    @property
    def url(self) -> str:
        """The app's base URL (a Space id resolved to its host)."""
        return self._async.url

    @property
    def session_hash(self) -> str:
        return self._async.session_hash

    def ping(self) -> float:
        """Check that the app answers; the round trip in seconds (see `AsyncClient.ping`)."""
        return self._portal.call(self._async.ping)

    def reload(self) -> AppSchema:
        """Read the app's API again and use it from now on (see `AsyncClient.reload`)."""
        return self._portal.call(self._async.reload)

    def endpoint(self, api_name: str | None = None, fn_index: int | None = None) -> Endpoint:
        return self._async.endpoint(api_name, fn_index)

    def submit(
        self,
        *args: Any,
        api_name: str | None = None,
        fn_index: int | None = None,
        headers: Mapping[str, str] | None = None,
        result_callbacks: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        **kwargs: Any,
    ) -> Job:
        def submit() -> Job:
            job = self._async.submit(
                *args,
                api_name=api_name,
                fn_index=fn_index,
                headers=headers,
                result_callbacks=result_callbacks,
                **kwargs,
            )
            return Job.wrap(job, self._portal)

        return self._portal.call(submit)

    def predict(
        self,
        *args: Any,
        api_name: str | None = None,
        fn_index: int | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        return self.submit(
            *args, api_name=api_name, fn_index=fn_index, headers=headers, **kwargs
        ).result()

    def view_api(
        self,
        all_endpoints: bool | None = None,
        print_info: bool = True,
        return_format: Literal["dict", "str"] | None = None,
    ) -> dict[str, Any] | str | None:
        return self._async.view_api(all_endpoints, print_info, return_format)

    def reset_session(self) -> None:
        self._portal.call(self._async.reset_session)
