"""jobs — an async client for one Gradio app, with gradio_client's surface.

```python
from jobs import Client, handle_file

client = Client("http://127.0.0.1:7860")
client.predict(num1=4, operation="add", num2=5, api_name="/predict")
```
"""

import importlib
from typing import TYPE_CHECKING

from .errors import (
    AppError,
    ArgumentError,
    AuthError,
    ConnectionFailed,
    DownloadFailed,
    EndpointNotFound,
    FileError,
    InputRejected,
    JobCancelled,
    JobsError,
    JobTimeout,
    LimitExceeded,
    ProtocolError,
    QueueFull,
    QuotaExceeded,
    RateLimited,
    ServerError,
    SpaceError,
    SpaceNotRunning,
    StreamLost,
    UnsupportedVersion,
    ZeroGpuError,
)

if TYPE_CHECKING:
    from ._client import AsyncClient
    from ._files import file, handle_file, is_file_data
    from ._hub.api import ZeroGpuQuota, hardware_prices, pause_space, restart_space, zerogpu_quota
    from ._hub.spaces import (
        SpaceRuntime,
        broken_stage_advice,
        duplicate_space,
        hf_token_from_env,
        is_hf_host,
        space_runtime,
    )
    from ._job import AsyncJob, JobTimings
    from ._protocol.limits import Limits
    from ._protocol.messages import ProgressUnit
    from ._protocol.schema import AppSchema, Endpoint, Parameter, Return
    from ._protocol.status import Status, StatusUpdate
    from ._protocol.zerogpu import ZeroGpuKind
    from ._sync import Client, Job

__version__ = "0.1.0"

# The rest is imported on first use (PEP 562), so `import jobs`, and through it the
# `spacerun` command line, costs little: httpx, anyio and the client's modules load when
# a name that needs them is first reached, aiohttp when a client opens, huggingface_hub
# when the Hub is called. mypy and readers see the imports above.
_LAZY = {
    "_client": ("AsyncClient",),
    "_files": ("file", "handle_file", "is_file_data"),
    "_hub.api": (
        "ZeroGpuQuota",
        "hardware_prices",
        "pause_space",
        "restart_space",
        "zerogpu_quota",
    ),
    "_job": ("AsyncJob", "JobTimings"),
    "_protocol.limits": ("Limits",),
    "_protocol.messages": ("ProgressUnit",),
    "_protocol.schema": ("AppSchema", "Endpoint", "Parameter", "Return"),
    "_hub.spaces": (
        "SpaceRuntime",
        "broken_stage_advice",
        "duplicate_space",
        "hf_token_from_env",
        "is_hf_host",
        "space_runtime",
    ),
    "_protocol.status": ("Status", "StatusUpdate"),
    "_sync": ("Client", "Job"),
    "_protocol.zerogpu": ("ZeroGpuKind",),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


__all__ = [
    "AppError",
    "AppSchema",
    "ArgumentError",
    "AsyncClient",
    "AsyncJob",
    "AuthError",
    "Client",
    "ConnectionFailed",
    "DownloadFailed",
    "Endpoint",
    "EndpointNotFound",
    "FileError",
    "InputRejected",
    "Job",
    "JobCancelled",
    "JobTimeout",
    "JobTimings",
    "JobsError",
    "LimitExceeded",
    "Limits",
    "Parameter",
    "ProgressUnit",
    "ProtocolError",
    "QueueFull",
    "QuotaExceeded",
    "RateLimited",
    "Return",
    "ServerError",
    "SpaceError",
    "SpaceNotRunning",
    "SpaceRuntime",
    "Status",
    "StatusUpdate",
    "StreamLost",
    "UnsupportedVersion",
    "ZeroGpuError",
    "ZeroGpuKind",
    "ZeroGpuQuota",
    "__version__",
    "broken_stage_advice",
    "duplicate_space",
    "file",
    "handle_file",
    "hardware_prices",
    "hf_token_from_env",
    "is_file_data",
    "is_hf_host",
    "pause_space",
    "restart_space",
    "space_runtime",
    "zerogpu_quota",
]
