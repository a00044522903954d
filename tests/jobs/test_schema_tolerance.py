"""The schema takes what real servers send: a config that repeats an api_name (gradio 6
renders an inner Blocks under a name the outer one already has) loads whole, and only
a listener that truly cannot be called fails, when it is called, saying why."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from support.apps import RunningApp

import jobs
from jobs import AppSchema


def _read(url: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    with httpx.Client(timeout=30, trust_env=False) as http:
        config = http.get(f"{url}/config").json()
        prefix = config.get("api_prefix", "")
        info = http.get(f"{url}{prefix}/info", params={"all_endpoints": "True"}).json()
        public = http.get(f"{url}{prefix}/info").json()
    return config, info, public


def test_repeated_api_name_loads_and_each_listener_is_callable(demos_app: RunningApp) -> None:
    """Two listeners named /lambda_1: api_name reaches the first (as gradio_client),
    fn_index the second; every other endpoint is unaffected."""
    config, _, _ = _read(demos_app.url)
    named = [d["api_name"] for d in config["dependencies"]]
    assert named.count("lambda_1") == 2, named  # what gradio renders, not our doing
    second = [d["id"] for d in config["dependencies"] if d["api_name"] == "lambda_1"][1]
    with jobs.Client(demos_app.url) as client:
        assert client.predict("x", api_name="/lambda_1") == "inner: x"
        assert client.predict(fn_index=second) == "constant"
        assert client.predict("animals", api_name="/update_choices")["value"] == "Giraffe"


def test_only_the_broken_listener_fails(demos_app: RunningApp) -> None:
    """A listener naming a component the config does not describe parses; calling it
    raises a ProtocolError saying why; the other endpoints still bind."""
    config, info, public = _read(demos_app.url)
    broken = copy.deepcopy(config)
    gallery = next(d for d in broken["dependencies"] if d["api_name"] == "gallery")
    broken["components"] = [c for c in broken["components"] if c["id"] not in gallery["outputs"]]
    schema = AppSchema.parse(broken, info, url=demos_app.url, public_info=public)
    with pytest.raises(jobs.ProtocolError, match=r"/gallery cannot be called: .*does not describe"):
        schema.endpoint("/gallery").bind((2,), {})
    assert schema.endpoint("/count").bind((3,), {}) == {"n": 3}
