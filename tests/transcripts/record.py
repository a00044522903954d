"""Record raw SSE transcripts of `GET P/queue/data?session_hash=...` from the test apps.

    python tests/transcripts/record.py                 # gradio of this interpreter
    python tests/transcripts/record.py --python .venv-gradio-5.50.0/bin/python \\
        --out tests/transcripts/gradio-5.50.0

Plain httpx, no gradio_client. Each transcript is `<name>.sse` (the response body
bytes exactly as received) and `<name>.json` (gradio version, the requests that
produced it, the event ids, and what a parser should find). Re-recording changes
event ids, durations and timings; message kinds and order are what tests rely on.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for `support` when run as a script

from support.apps import RunningApp, start_apps  # noqa: E402

STREAM_TIMEOUT = 30.0


@dataclass(kw_only=True)
class Session:
    """One session hash on one app: joins, a raw stream reader, the sidecar notes."""

    app: RunningApp
    http: httpx.AsyncClient
    session_hash: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    stream_info: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return str((self.app.config or {}).get("api_prefix", ""))

    def fn_index(self, api_name: str) -> int:
        for dep in (self.app.config or {})["dependencies"]:
            if dep.get("api_name") == api_name:
                return int(dep["id"])
        raise KeyError(api_name)

    async def join(self, api_name: str, data: list[Any]) -> str:
        body = {
            "data": data,
            "fn_index": self.fn_index(api_name),
            "session_hash": self.session_hash,
            "event_data": None,
            "trigger_id": None,
        }
        path = f"{self.prefix}/queue/join"
        response = await self.http.post(self.app.url + path, json=body)
        response.raise_for_status()
        event_id = str(response.json()["event_id"])
        self.event_ids.append(event_id)
        self.requests.append(
            {
                "method": "POST",
                "path": path,
                "api_name": api_name,
                "json": body,
                "status": response.status_code,
                "response": response.json(),
            }
        )
        return event_id

    async def cancel(self, api_name: str, event_id: str) -> None:
        body = {
            "session_hash": self.session_hash,
            "fn_index": self.fn_index(api_name),
            "event_id": event_id,
        }
        path = f"{self.prefix}/cancel"
        response = await self.http.post(self.app.url + path, json=body)
        response.raise_for_status()
        self.requests.append(
            {
                "method": "POST",
                "path": path,
                "api_name": api_name,
                "json": body,
                "status": response.status_code,
                "response": response.json(),
            }
        )

    async def read_stream(self, on_message: Any = None) -> None:
        """Read the session stream to its end, keeping the raw bytes.

        `on_message(msg)` (async) sees each decoded message as it arrives, so a
        recorder can act at a protocol point (e.g. cancel once queued).
        """
        path = f"{self.prefix}/queue/data"
        params = {"session_hash": self.session_hash}
        pending = b""
        with anyio.fail_after(STREAM_TIMEOUT):
            async with self.http.stream("GET", self.app.url + path, params=params) as response:
                self.stream_info = {
                    "method": "GET",
                    "path": path,
                    "params": params,
                    "status": response.status_code,
                    "content_type": response.headers.get("content-type"),
                    "content_encoding": response.headers.get("content-encoding"),
                }
                async for chunk in response.aiter_raw():
                    self.raw.extend(chunk)
                    pending += chunk
                    *records, pending = pending.split(b"\n\n")
                    for record in records:
                        if on_message is not None and record.startswith(b"data: "):
                            await on_message(json.loads(record[len(b"data: ") :]))

    def messages(self) -> list[dict[str, Any]]:
        return [
            json.loads(line[len(b"data: ") :])
            for line in bytes(self.raw).split(b"\n")
            if line.startswith(b"data: ")
        ]

    def save(self, out: Path, name: str, description: str, **extra: Any) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.sse").write_bytes(bytes(self.raw))
        sidecar = {
            "name": name,
            "description": description,
            "app": self.app.name,
            "gradio_version": self.app.gradio_version,
            "protocol": (self.app.config or {}).get("protocol"),
            "session_hash": self.session_hash,
            "event_ids": self.event_ids,
            "requests": self.requests,
            "stream": self.stream_info,
            "msgs": [m.get("msg") for m in self.messages()],
            **extra,
        }
        (out / f"{name}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
        print(f"{name}: {len(self.raw)} bytes, {' '.join(sidecar['msgs'])}")


async def _simple(
    apps: dict[str, RunningApp],
    http: httpx.AsyncClient,
    out: Path,
    *,
    name: str,
    app: str,
    api_name: str,
    data: list[Any],
    description: str,
) -> None:
    session = Session(app=apps[app], http=http, session_hash=f"rec-{name}")
    await session.join(api_name, data)
    await session.read_stream()
    session.save(out, name, description)


async def _interleaved(apps: dict[str, RunningApp], http: httpx.AsyncClient, out: Path) -> None:
    session = Session(app=apps["generator"], http=http, session_hash="rec-interleaved")
    await session.join("count", [3, 0.15])
    await session.join("stream_text", ["alpha beta gamma delta"])
    await session.read_stream()
    session.save(
        out,
        "interleaved",
        "One session, two events joined before the stream opens (/count 3 with 0.15 s"
        " pauses, /stream_text): their messages interleave on one stream.",
    )


async def _cancel_queued(apps: dict[str, RunningApp], http: httpx.AsyncClient, out: Path) -> None:
    """Session A runs /sleep; session B's /sleep waits behind it and is cancelled."""
    first = Session(app=apps["slow"], http=http, session_hash="rec-cancel-running")
    second = Session(app=apps["slow"], http=http, session_hash="rec-cancel-queued")
    first_started = anyio.Event()
    second_event: list[str] = []

    async def on_first(msg: dict[str, Any]) -> None:
        if msg.get("msg") == "process_starts":
            first_started.set()

    async def on_second(msg: dict[str, Any]) -> None:
        # B is queued once its estimation arrives (A holds the only slot).
        if msg.get("msg") == "estimation" and msg.get("event_id") == second_event[0]:
            await second.cancel("sleep", second_event[0])

    await first.join("sleep", [1.5, "first"])
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.read_stream, on_first)
        await first_started.wait()
        second_event.append(await second.join("sleep", [1.5, "second"]))
        await second.read_stream(on_second)
    # What the server ran, by tag: "second" must be absent (it never started).
    calls = await http.post(f"{first.app.url}{first.prefix}/run/calls", json={"data": []})
    server_calls = json.loads(calls.json()["data"][0])
    second.save(
        out,
        "cancel_queued",
        "/sleep(1.5) joined while another session's /sleep holds the only slot"
        " (concurrency_limit=1), cancelled via POST /cancel while queued:"
        " estimation, then process_completed with output {} and close_stream.",
        cancelled_event_id=second_event[0],
        server_calls_after=server_calls,
    )
    first.save(
        out,
        "cancel_queued_other",
        "The other session of cancel_queued: its running /sleep(1.5) completes normally.",
    )


async def record_all(out: Path, python: str | None) -> None:
    apps = {
        app.name: app
        for app in start_apps(["calculator", "generator", "slow", "quiet_crash"], python=python)
    }
    try:
        async with httpx.AsyncClient(
            trust_env=False, timeout=httpx.Timeout(STREAM_TIMEOUT)
        ) as http:
            simple = [
                (
                    "predict_add",
                    "calculator",
                    "predict",
                    [3, "add", 4],
                    "calculator /predict 3 + 4 = 7: estimation, process_starts,"
                    " process_completed, close_stream.",
                ),
                (
                    "app_error",
                    "calculator",
                    "predict",
                    [1, "divide", 0],
                    "calculator 1 / 0: gr.Error('Cannot divide by zero', title='Math error')"
                    " -> process_completed success false.",
                ),
                (
                    "generator_count",
                    "generator",
                    "count",
                    [3, None],
                    "/count 3: yields '0', '1', '2' (process_generating: first full value,"
                    " then replace diffs), process_completed with the final value '2'.",
                ),
                (
                    "stream_text",
                    "generator",
                    "stream_text",
                    ["the quick brown fox jumps"],
                    "/stream_text: a growing text; after the first full value the server"
                    " sends ['append', [], 'word '] diffs.",
                ),
                (
                    "chat_diffs",
                    "generator",
                    "chat",
                    ["hello there"],
                    "/chat: a messages Chatbot whose last message grows: nested append"
                    " diffs on a path into the message content.",
                ),
                (
                    "fail_after",
                    "generator",
                    "fail_after",
                    ["step"],
                    "/fail_after: two process_generating, then process_completed success"
                    " false with gr.Error('Generator failed after two steps').",
                ),
                (
                    "progress",
                    "generator",
                    "progress",
                    [3],
                    "/progress 3: gr.Info log, progress messages (gr.Progress tqdm),"
                    " gr.Warning log, then the result.",
                ),
                (
                    "crash_show_error",
                    "slow",
                    "crash",
                    [],
                    "/crash raising ValueError on an app with show_error=True: the error"
                    " text is sent.",
                ),
                (
                    "crash_quiet",
                    "quiet_crash",
                    "crash",
                    [],
                    "/crash raising ValueError on an app with show_error=False: error null.",
                ),
            ]
            for name, app, api_name, data, description in simple:
                await _simple(
                    apps,
                    http,
                    out,
                    name=name,
                    app=app,
                    api_name=api_name,
                    data=data,
                    description=description,
                )
            await _interleaved(apps, http, out)
            await _cancel_queued(apps, http, out)
    finally:
        for app in apps.values():
            app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", help="interpreter for the apps (default: see support)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the files")
    args = parser.parse_args()
    anyio.run(record_all, args.out, args.python)


if __name__ == "__main__":
    main()
