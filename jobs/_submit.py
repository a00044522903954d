"""The steps of a submission that need no client state: result callbacks as a tuple,
the postprocess step (downloads), the `queue/join` request, and duplicating a Space."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._files import inline_files

if TYPE_CHECKING:
    from ._files import Downloader, Uploader
    from ._job import AsyncJob, Postprocess

__all__ = ["callbacks_of", "make_join", "make_postprocess", "resolve_duplicate"]


def callbacks_of(
    result_callbacks: Callable[..., Any] | Sequence[Callable[..., Any]] | None,
) -> tuple[Callable[..., Any], ...]:
    """gradio_client takes one callback or a list of them."""
    if result_callbacks is None:
        return ()
    if callable(result_callbacks):
        return (result_callbacks,)
    return tuple(result_callbacks)


def make_postprocess(downloader: Downloader | None) -> Postprocess:
    """Output values with every file downloaded (or untouched, without a downloader)."""

    async def postprocess(values_out: list[Any]) -> list[Any]:
        if downloader is None:
            return values_out
        return [await downloader.localize(v) for v in values_out]

    return postprocess


def make_join(
    job: AsyncJob,
    wrapped: Mapping[str, Any],
    uploader: Uploader,
    *,
    headers: Mapping[str, str] | None,
    oauth_token: str | None,
) -> Callable[[], Awaitable[str]]:
    """The job's `queue/join`: uploads its files, then sends it; returns the event id.
    `headers` are this job's own (gradio_client's per-request headers)."""
    endpoint, session = job.endpoint, job.session
    join_headers = {**(headers or {}), "x-gradio-user": "api"}
    # gradio 6 passes this to functions taking a gr.OAuthToken; sent to those only.
    extra = {"oauth_token": oauth_token} if oauth_token else {}

    async def join() -> str:
        values = dict(wrapped)
        if any(p.inline for p in endpoint.parameters):
            values = await inline_files(endpoint.parameters, values)
        uploaded = await uploader.upload_all(values)
        body = {
            "data": endpoint.payload(uploaded),
            "fn_index": endpoint.fn_index,
            "session_hash": session.hash,
            "event_data": None,
            "trigger_id": None,
            **extra,
        }
        return await session.join(job, body, headers=join_headers)

    return join


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
    from ._hub.spaces import duplicate_space, hf_token_from_env

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
