"""What Gradio's servers say, decoded without any I/O (sans-IO): the event stream's bytes
(`sse`), its messages and diffs (`messages`), an app's API (`schema`), a job's status
(`status`), ZeroGPU's errors (`zerogpu`), rate-limit headers (`ratelimit`) and the
client's bounds on all of it (`limits`).

Nothing here imports httpx, anyio or aiohttp (tests/test_layout.py checks it): the
HTTP layer (`jobs._http`) and the client feed these modules bytes and values, so each
protocol's rules are tested, and can be reused, without a network.
"""

__all__: list[str] = []
