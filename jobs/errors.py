"""The exceptions of the `jobs` client, rooted at one class.

```
JobsError
├── ConnectionFailed          the app could not be reached (refused, DNS, TLS, timeout)
│   └── StreamLost            the event stream ended mid-job (server died or restarted)
├── ProtocolError             the server answered something this client does not understand
│   ├── UnsupportedVersion    the app's gradio is older than any protocol spoken here
│   └── LimitExceeded         an answer is over one of the client's `Limits` (names it)
├── ServerError               an HTTP 5xx from the app or its proxy
│   └── QueueFull             503: the app's queue is at its max_size
├── RateLimited               429 from the Hugging Face proxy (carries retry_after)
├── AuthError                 401/403, a wrong password, or a missing/invalid HF token
├── DownloadFailed            an output file could not be fetched (403 "File not allowed", 404)
├── SpaceError                a Hugging Face Space could not be used
│   └── SpaceNotRunning       paused, broken, missing, or not up before the deadline
├── ArgumentError             the call's arguments do not fit the endpoint (raised before sending)
│   ├── EndpointNotFound      no such api_name / fn_index
│   └── FileError             a local input file is missing or too large, or an output
│                             file cannot be saved (disk full, read-only)
├── AppError                  the app ran the job and it failed (gr.Error or a crash)
│   ├── InputRejected         the app's validator refused the inputs (HTTP 422)
│   └── ZeroGpuError          a ZeroGPU Space gave the job no GPU, or its GPU task failed
│       └── QuotaExceeded     the account's ZeroGPU quota is spent (carries retry_after)
├── JobCancelled              the job was cancelled before it produced its result
└── JobTimeout                `result(timeout=...)` ran out
```

So that programs written for gradio_client keep catching what they catch there, some
classes also derive from the builtins gradio_client raises: `ArgumentError` is a
`ValueError` and a `TypeError` (a missing or unknown argument is a `TypeError` there, an
unknown endpoint or an oversized file a `ValueError`), `AppError` and `AuthError` are
`ValueError`s (as gradio_client's `AppError` and `AuthenticationError`), `JobCancelled`
is a `concurrent.futures.CancelledError` and `JobTimeout` a `TimeoutError`.

Every message says what happened and what to do next. Errors carry the context a
caller needs to decide (`url`, `status_code`, `retry_after`, `stage`, ...). Secrets
never appear in them: messages are built from URLs and server text only.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping, Sequence

__all__ = [
    "AppError",
    "ArgumentError",
    "AuthError",
    "ConnectionFailed",
    "DownloadFailed",
    "EndpointNotFound",
    "FileError",
    "InputRejected",
    "JobCancelled",
    "JobTimeout",
    "JobsError",
    "LimitExceeded",
    "ProtocolError",
    "QueueFull",
    "QuotaExceeded",
    "RateLimited",
    "ServerError",
    "SpaceError",
    "SpaceNotRunning",
    "StreamLost",
    "UnsupportedVersion",
    "ZeroGpuError",
]


class JobsError(Exception):
    """Root of every error raised by `jobs`."""

    #: True when trying the same job again later may succeed.
    transient: bool = False

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url


class ConnectionFailed(JobsError):
    """The app could not be reached. Check the URL, that the server runs, and the network."""

    transient = True


class StreamLost(ConnectionFailed):
    """The event stream ended before the job finished: the server died, restarted or dropped us.

    The job may or may not have run; submitting it again is safe for idempotent work.
    """

    def __init__(self, message: str, *, url: str | None = None, event_id: str | None = None):
        super().__init__(message, url=url)
        self.event_id = event_id


class ProtocolError(JobsError):
    """The server answered in a way this client does not understand."""


class UnsupportedVersion(ProtocolError):
    """The app runs a Gradio version whose protocol this client does not speak."""

    def __init__(self, message: str, *, url: str | None = None, version: str | None = None):
        super().__init__(message, url=url)
        self.version = version


class LimitExceeded(ProtocolError):
    """An answer from the server is larger than a limit of the client allows (a line of the
    event stream, a JSON document, a downloaded file). `limit` is the option's name in
    `jobs.Limits`, `value` its value in bytes; the message says how to raise it. Whatever
    was read is dropped: memory stays bounded by the limit, and no partial file remains."""

    def __init__(self, message: str, *, url: str | None = None, limit: str, value: int) -> None:
        super().__init__(message, url=url)
        self.limit = limit
        self.value = value


class ServerError(JobsError):
    """The app (or a proxy in front of it) answered with a 5xx status."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.status_code = status_code
        self.retry_after = retry_after


class QueueFull(ServerError):
    """The app's queue is full (HTTP 503). Wait and submit again, or send fewer jobs at once."""


class RateLimited(JobsError):
    """The Hugging Face proxy refused the request with 429. Wait `retry_after` seconds."""

    transient = True

    def __init__(
        self, message: str, *, url: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, url=url)
        self.retry_after = retry_after


class AuthError(JobsError, ValueError):
    """Not allowed in: wrong or missing credentials, or a token without access."""


class DownloadFailed(JobsError):
    """An output file the app returned could not be downloaded: the app refused to serve
    it (403 "File not allowed": it is outside the app's allowed paths) or it is gone."""

    def __init__(self, message: str, *, url: str | None = None, status_code: int | None = None):
        super().__init__(message, url=url)
        self.status_code = status_code


class SpaceError(JobsError):
    """A Hugging Face Space could not be resolved, duplicated or configured."""

    def __init__(self, message: str, *, url: str | None = None, space_id: str | None = None):
        super().__init__(message, url=url)
        self.space_id = space_id


class SpaceNotRunning(SpaceError):
    """The Space is not running and will not be soon (paused, broken, missing), or it did
    not come up before the deadline. `stage` is the Hub's runtime stage."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        space_id: str | None = None,
        stage: str | None = None,
    ) -> None:
        super().__init__(message, url=url, space_id=space_id)
        self.stage = stage
        # Asleep or still starting after the deadline may work later; broken will not.
        self.transient = stage in {
            "SLEEPING",
            "BUILDING",
            "APP_STARTING",
            "RUNNING_BUILDING",
            "RUNNING_APP_STARTING",
            "STOPPED",
        }


class ArgumentError(JobsError, ValueError, TypeError):
    """The arguments do not fit the endpoint. Raised before anything is sent."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        parameter: str | None = None,
        valid: Sequence[str] = (),
    ) -> None:
        super().__init__(message, url=url)
        self.parameter = parameter
        self.valid = tuple(valid)


class EndpointNotFound(ArgumentError):
    """No endpoint with that api_name or fn_index; `valid` lists the ones that exist."""


class FileError(ArgumentError):
    """A local input file does not exist, or is larger than the app accepts; or an output
    file could not be saved where downloads go (the disk is full or read-only)."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        path: str | None = None,
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.path = path
        self.size = size
        self.limit = limit


class AppError(JobsError, ValueError):
    """The app ran the job and it failed: a `gr.Error` (with the app's message and title),
    or an exception in the app's code (its text, if the app shows errors)."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        app_message: str | None = None,
        title: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.app_message = app_message
        self.title = title
        self.event_id = event_id


class InputRejected(AppError):
    """The app's validator refused the inputs (HTTP 422). `problems` maps parameter -> reason."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        problems: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, url=url, app_message=message)
        self.problems = dict(problems or {})


class JobCancelled(JobsError, concurrent.futures.CancelledError):
    """The job was cancelled before it produced its result."""


# Before Python 3.11 `concurrent.futures.TimeoutError` is not the builtin.
_TIMEOUTS: tuple[type[Exception], ...] = tuple(
    dict.fromkeys((TimeoutError, concurrent.futures.TimeoutError))
)


class JobTimeout(JobsError, *_TIMEOUTS):  # type: ignore[misc]
    """Waiting for the job's result took longer than the timeout given. The job itself
    goes on; call `cancel()` to stop it."""


class ZeroGpuError(AppError):
    """A ZeroGPU Space could not give the job a GPU, or the GPU task failed. `kind` is the
    case (a `ZeroGpuKind` value: "queue_timeout", "illegal_duration", ...); `transient`
    depends on it: no GPU free now may pass, a duration over the account's maximum never.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        transient: bool,
        url: str | None = None,
        app_message: str | None = None,
        title: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(message, url=url, app_message=app_message, title=title, event_id=event_id)
        self.kind = kind
        self.transient = transient


class QuotaExceeded(ZeroGpuError):
    """The account's ZeroGPU quota (or runs limit) is spent. Every Space reached with the
    same token refuses GPU work until it resets, `retry_after` seconds from now (None when
    the Space did not say). `requested`/`left` are GPU seconds, when given."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "quota",
        retry_after: float | None = None,
        requested: int | None = None,
        left: int | None = None,
        url: str | None = None,
        app_message: str | None = None,
        title: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            kind=kind,
            transient=True,
            url=url,
            app_message=app_message,
            title=title,
            event_id=event_id,
        )
        self.retry_after = retry_after
        self.requested = requested
        self.left = left
