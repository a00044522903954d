"""The sans-IO protocol layer: SSE decoding, message parsing and generator diffs, fed with
event streams recorded from real Gradio servers (`tests/transcripts/`, `record.py`)."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobs._protocol.messages import Message, MsgKind, apply_diff, parse_message
from jobs._protocol.sse import SSEDecoder
from jobs.errors import ProtocolError

TRANSCRIPTS = Path(__file__).parent.parent / "transcripts"
RECORDINGS = sorted(TRANSCRIPTS.rglob("*.sse"))


@dataclass
class Replayed:
    """What a client learns about one event from a stream."""

    kinds: list[MsgKind] = field(default_factory=list)
    outputs: list[list[Any]] = field(default_factory=list)
    final: Message | None = None


def replay(raw: bytes, *, seed: int = 0) -> tuple[dict[str, Replayed], list[Message]]:
    """Feed `raw` to the decoder in random chunk sizes, as a network would split it."""
    rng = random.Random(seed)
    decoder = SSEDecoder()
    messages: list[Message] = []
    pos = 0
    while pos < len(raw):
        size = rng.randint(1, 97)
        messages.extend(parse_message(e.data) for e in decoder.feed(raw[pos : pos + size]))
        pos += size
    assert not decoder.has_partial
    events: dict[str, Replayed] = {}
    for message in messages:
        if message.event_id is None:
            continue
        event = events.setdefault(message.event_id, Replayed())
        event.kinds.append(message.kind)
        if message.kind is MsgKind.PROCESS_GENERATING:
            assert message.data is not None
            if event.outputs:
                event.outputs.append(
                    [
                        apply_diff(old, ops)
                        for old, ops in zip(event.outputs[-1], message.data, strict=True)
                    ]
                )
            else:
                event.outputs.append(list(message.data))
        elif message.kind is MsgKind.PROCESS_COMPLETED:
            event.final = message
    return events, messages


def load(name: str, version: str | None = None) -> tuple[dict[str, Any], bytes]:
    folder = TRANSCRIPTS / version if version else TRANSCRIPTS
    meta = json.loads((folder / f"{name}.json").read_text())
    return meta, (folder / f"{name}.sse").read_bytes()


def test_recordings_exist() -> None:
    """The transcripts this module replays are in the repository."""
    names = {p.stem for p in RECORDINGS}
    assert {
        "predict_add",
        "app_error",
        "generator_count",
        "stream_text",
        "chat_diffs",
        "cancel_queued",
        "interleaved",
        "progress",
        "crash_quiet",
    } <= names


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: str(p.relative_to(TRANSCRIPTS)))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_recording_parses_and_diffs_rebuild_the_final_value(path: Path, seed: int) -> None:
    """Any chunking gives the same messages; rebuilt generator values end on the final one."""
    events, messages = replay(path.read_bytes(), seed=seed)
    assert messages and all(m.kind is not MsgKind.UNKNOWN for m in messages)
    meta = json.loads(path.with_suffix(".json").read_text())
    for event_id in meta["event_ids"]:
        event = events[event_id]
        if (
            event.final is not None
            and event.final.success
            and event.final.data is not None
            and event.outputs
        ):
            assert event.outputs[-1] == event.final.data


def test_simple_predict() -> None:
    """estimation -> process_starts -> process_completed with the value, then close."""
    meta, raw = load("predict_add")
    events, messages = replay(raw)
    event = events[meta["event_ids"][0]]
    assert event.kinds == [MsgKind.ESTIMATION, MsgKind.PROCESS_STARTS, MsgKind.PROCESS_COMPLETED]
    assert event.final is not None and event.final.success and event.final.data == [7]
    assert messages[-1].kind is MsgKind.CLOSE_STREAM


def test_app_error_message_and_title() -> None:
    """A gr.Error completes unsuccessfully with the app's text and title."""
    meta, raw = load("app_error")
    final = replay(raw)[0][meta["event_ids"][0]].final
    assert final is not None and final.success is False
    assert final.text == "Cannot divide by zero" and final.title == "Math error"


def test_quiet_crash_has_no_text() -> None:
    """An app without verbose errors sends no error text."""
    meta, raw = load("crash_quiet")
    final = replay(raw)[0][meta["event_ids"][0]].final
    assert final is not None and final.success is False and final.text is None


def test_cancelled_event_completes_without_data() -> None:
    """A cancelled queued event completes 'successfully' with no data: cancelled."""
    meta, raw = load("cancel_queued")
    events, _ = replay(raw)
    finals = [events[e].final for e in meta["event_ids"] if e in events]
    assert any(f is not None and f.success and f.data is None for f in finals)


def test_text_stream_diffs() -> None:
    """Append diffs rebuild every intermediate text."""
    meta, raw = load("stream_text")
    event = replay(raw)[0][meta["event_ids"][0]]
    texts = [out[0] for out in event.outputs]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert len(texts) >= 3


def test_interleaved_events_are_demultiplexed() -> None:
    """Two events on one stream keep their own message sequences."""
    meta, raw = load("interleaved")
    events, _ = replay(raw)
    count, text = (events[e] for e in meta["event_ids"])
    assert [o[0] for o in count.outputs] == ["0", "1", "2"]
    assert count.final is not None and text.final is not None


def test_progress_units() -> None:
    """gr.Progress arrives as progress units with index, length and description."""
    _, raw = load("progress")
    _, messages = replay(raw)
    progress = [m for m in messages if m.kind is MsgKind.PROGRESS]
    logs = [m for m in messages if m.kind is MsgKind.LOG]
    assert progress and progress[-1].progress[0].desc == "looping"
    assert {m.level for m in logs} == {"info", "warning"}


def test_sse_decoder_handles_crlf_comments_and_multiline() -> None:
    """The decoder follows the SSE spec beyond what Gradio itself sends."""
    decoder = SSEDecoder()
    events = decoder.feed(b": comment\r\nevent: x\r\ndata: a\r")
    events += decoder.feed(b"\ndata: b\r\n\r\ndata:c\n\n")
    assert [(e.event, e.data) for e in events] == [("x", "a\nb"), ("message", "c")]


def test_diff_ops() -> None:
    """Each diff op of the protocol reference applies as documented."""
    value = {"a": [1, 2, 3], "s": "x"}
    assert apply_diff(value, [["append", ["s"], "y"]]) == {"a": [1, 2, 3], "s": "xy"}
    assert apply_diff(value, [["add", ["a", 1], 9]]) == {"a": [1, 9, 2, 3], "s": "x"}
    assert apply_diff(value, [["delete", ["a", 0], None]]) == {"a": [2, 3], "s": "x"}
    assert apply_diff(value, [["replace", [], 5]]) == 5
    assert apply_diff("ab", [["append", [], "c"]]) == "abc"
    assert value == {"a": [1, 2, 3], "s": "x"}  # the input is not modified
    with pytest.raises(ProtocolError, match="unknown diff op"):
        apply_diff(value, [["move", ["a"], 1]])


def test_bad_json_is_a_protocol_error() -> None:
    """A stream that is not JSON raises ProtocolError, not a JSON error."""
    with pytest.raises(ProtocolError, match="invalid JSON"):
        parse_message("{not json")
