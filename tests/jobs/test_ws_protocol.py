"""gradio 3.x's websocket messages decoded without a network (`jobs._protocol.ws`), on
frames recorded from a gradio 3.50.2 server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobs import ProtocolError
from jobs._protocol.messages import MsgKind
from jobs._protocol.schema import AppSchema
from jobs._protocol.ws import WsControl, data_body, parse_ws, predict_answer

# Recorded from gradio 3.50.2 (tests/apps/gradio3.py), in order, for one generator job.
ESTIMATION = (
    '{"msg":"estimation","rank":0,"queue_size":1,"avg_event_process_time":0.0,'
    '"avg_event_concurrent_process_time":null,"rank_eta":null,"queue_eta":1.0}'
)
GENERATING = (
    '{"msg":"process_generating","output":{"data":["%s"],"is_generating":true,'
    '"duration":0.2,"average_duration":0.2},"success":true}'
)
FILE_DONE = (
    '{"msg":"process_completed","output":{"data":[{"orig_name":"in.txt","name":'
    '"/tmp/gradio/f57/in.txt","size":6,"data":null,"is_file":true}],"is_generating":false,'
    '"duration":0.0002},"success":true}'
)


def test_server_requests_are_controls() -> None:
    assert parse_ws('{"msg":"send_hash"}', event_id="e") is WsControl.SEND_HASH
    assert parse_ws('{"msg":"send_data"}', event_id="e") is WsControl.SEND_DATA
    assert parse_ws('{"msg":"queue_full"}', event_id="e") is WsControl.QUEUE_FULL


def test_estimation_is_tagged_with_the_sockets_name() -> None:
    message = parse_ws(ESTIMATION, event_id="job-1")
    assert not isinstance(message, WsControl)
    assert (message.kind, message.event_id, message.rank, message.queue_size) == (
        MsgKind.ESTIMATION,
        "job-1",
        0,
        1,
    )


def test_every_generator_value_arrives_whole() -> None:
    first = parse_ws(GENERATING % "0", event_id="e")
    later = parse_ws(GENERATING % "1", event_id="e")
    assert not isinstance(first, WsControl) and not isinstance(later, WsControl)
    assert (first.data, later.data) == (["0"], ["1"])


def test_a_file_output_becomes_file_data_and_inputs_go_back_as_3x_dicts() -> None:
    done = parse_ws(FILE_DONE, event_id="e")
    assert not isinstance(done, WsControl)
    assert done.data == [
        {
            "path": "/tmp/gradio/f57/in.txt",
            "meta": {"_type": "gradio.FileData"},
            "orig_name": "in.txt",
            "size": 6,
        }
    ]
    body = {"data": [done.data[0], 3], "fn_index": 2, "session_hash": "s"}
    assert data_body(body)["data"] == [
        {"name": "/tmp/gradio/f57/in.txt", "orig_name": "in.txt", "data": None, "is_file": True},
        3,
    ]


def test_a_direct_calls_error_answer_is_a_failed_completion() -> None:
    failed = predict_answer(500, {"error": "'Cannot divide by zero!'"}, event_id="e")
    assert failed is not None and failed.success is False
    assert failed.text == "Cannot divide by zero!"
    assert predict_answer(404, {"detail": "Not Found"}, event_id="e") is None


def test_a_non_json_frame_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="invalid JSON"):
        parse_ws("<html>", event_id="e")


RECORDED = json.loads(
    (Path(__file__).resolve().parents[1] / "transcripts" / "gradio3_app.json").read_text()
)


def _signature(schema: AppSchema) -> list[Any]:
    return [
        (
            e.api_name,
            e.fn_index,
            e.queued,
            [(p.name, p.required, p.default, p.file_kind, p.inline) for p in e.parameters],
        )
        for e in schema.endpoints
    ]


def test_an_app_before_3_37_is_read_from_its_config_alone() -> None:
    """Without `/info?serialize=False` (gradio before 3.37) the config says the same:
    names, defaults, file and image parameters, and which listener skips the queue."""
    config, info = RECORDED["config"], RECORDED["info"]
    with_info = AppSchema.parse(config, info, url="http://a")
    older = AppSchema.parse({**config, "version": "3.20.0"}, {}, url="http://a")
    assert _signature(older) == _signature(with_info)
    upper = with_info.endpoint("/upper")
    assert upper.queued is False and with_info.endpoint("/count").queued is True
    assert with_info.endpoint("/mirror").parameters[0].inline


def test_no_queue_before_3_2_or_when_it_is_off() -> None:
    """gradio before 3.2 (or with the queue off) runs every listener by direct call."""
    config = RECORDED["config"]
    for changed in ({"version": "3.1.7"}, {"enable_queue": False}):
        schema = AppSchema.parse({**config, **changed}, {}, url="http://a")
        assert not any(e.queued for e in schema.endpoints)
