"""Local copies of app scripts written the way people write them, started by spacerun.

Real processes and real gradio apps: hardcoded ports, `share=True`, `inbrowser=True`, a
module-level `demo` that is never launched, a `__main__` guard, a slow load before
`launch(prevent_thread_lock=True)`. What a user checks: each copy answers on the port
spacerun gave it, the log says what was overridden, progress shows while it starts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobs import AsyncClient
from runner.launch import LocalAppError, LocalApps, LocalAppSpec, app_command
from runner.launch._gpus import find_gpus, parse_nvidia_smi, parse_visible_devices
from runner.launch._ready import last_line, listening_elsewhere

pytestmark = pytest.mark.anyio

APPS = Path(__file__).resolve().parents[1] / "apps"
SLOW = pytest.mark.timeout(600)  # several gradio imports on a shared machine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@SLOW
async def test_four_copies_of_a_script_with_a_hardcoded_port(tmp_path: Path) -> None:
    """launch(server_port=7960, share=True, inbrowser=True) x 4: four copies, each on
    its own port, each log saying what was overridden."""
    spec = LocalAppSpec(script=APPS / "hardcoded_port.py", count=4, ready_timeout=400)
    async with LocalApps(spec, log_dir=tmp_path) as apps:
        ports = {app.port for app in apps.apps}
        assert len(ports) == 4 and 7960 not in ports
        pids = set()
        for app in apps.apps:
            async with AsyncClient(app.url) as client:
                answer = await client.predict("Ada")
            assert answer.startswith("Hello Ada from pid ")
            pids.add(answer.rsplit(" ", 1)[1])
            log = app.log_path.read_text()
            assert f"launch(server_port=7960) overridden: server_port={app.port}" in log
            assert "launch(share=True) overridden: share=False" in log
            assert "launch(inbrowser=True) overridden: inbrowser=False" in log
            assert "launch(server_name='0.0.0.0') overridden: server_name='127.0.0.1'" in log
        assert len(pids) == 4


@SLOW
async def test_module_level_demo_is_launched_and_each_copy_sees_its_gpu(tmp_path: Path) -> None:
    """A script that only builds `demo` is launched; gpus give each copy its device."""
    messages: list[str] = []
    spec = LocalAppSpec(script=APPS / "module_demo.py", gpus=("3", "5"), ready_timeout=400)
    async with LocalApps(spec, log_dir=tmp_path, on_status=messages.append) as apps:
        assert [app.gpu for app in apps.apps] == ["3", "5"]
        for app in apps.apps:
            async with AsyncClient(app.url) as client:
                seen = await client.predict("copy")
            assert seen == f"copy: CUDA_VISIBLE_DEVICES={app.gpu}"
            assert "launched nothing: launching its module-level 'demo'" in app.log_path.read_text()
    assert messages[0] == "starting 2 local copies of module_demo.py on GPUs 3, 5…"
    assert any(m.startswith("local-1 ready at ") and " on GPU 3 " in m for m in messages)


@SLOW
async def test_chat_app_behind_a_main_guard_with_share(tmp_path: Path) -> None:
    """gr.ChatInterface inherits the patched launch: share=True and port 7961 overridden."""
    spec = LocalAppSpec(script=APPS / "chat_guarded.py", ready_timeout=400)
    async with LocalApps(spec, log_dir=tmp_path) as apps:
        (app,) = apps.apps
        async with AsyncClient(app.url) as client:
            assert await client.predict("hi") == "echo: hi"
        log = app.log_path.read_text()
        assert f"launch(server_port=7961) overridden: server_port={app.port}" in log
        assert "launch(share=True) overridden: share=False" in log


@SLOW
async def test_slow_load_shows_progress_and_keeps_serving_after_the_script_ends(
    tmp_path: Path,
) -> None:
    """While it loads, progress lines carry the log's last line; launched with
    prevent_thread_lock=True, it still serves once the script has ended."""
    messages: list[str] = []
    spec = LocalAppSpec(
        script=APPS / "slow_load.py",
        env={"SLOW_LOAD_STEPS": "4", "SLOW_LOAD_STEP_SECONDS": "1.5"},
        ready_timeout=400,
        progress_every=0.5,
    )
    async with LocalApps(spec, log_dir=tmp_path, on_status=messages.append) as apps:
        (app,) = apps.apps
        async with AsyncClient(app.url) as client:
            assert await client.predict(21) == 42
        assert "slow_load: launched; the script ends here" in app.log_path.read_text()
    progress = [m for m in messages if m.startswith("local-1 still starting (")]
    assert any(re.search(r"\(\d+ s\): Loading checkpoint shards [1-4]/4$", m) for m in progress)


async def test_script_that_builds_no_app_fails_with_what_to_do(tmp_path: Path) -> None:
    """No launch and no Blocks: the copy exits at once, and the error says why."""
    script = tmp_path / "not_an_app.py"
    script.write_text("print('computing something, serving nothing')\n")
    with pytest.raises(LocalAppError) as caught:
        async with LocalApps(LocalAppSpec(script=script), log_dir=tmp_path / "logs"):
            pytest.fail("entered although nothing serves")
    message = str(caught.value)
    assert "local copy local-1 of not_an_app.py" in message
    assert "exited before it was ready; exit code 3" in message
    assert "not_an_app.py ended without launching a Gradio app" in message


def test_app_command_is_the_bootstrap_with_port_env_and_gpu(tmp_path: Path) -> None:
    """The reusable recipe: python BOOTSTRAP SCRIPT ARGS, host/port and GPU in env."""
    script = tmp_path / "app.py"
    script.write_text("")
    command = app_command(
        script,
        host="127.0.0.1",
        port=7000,
        python="/opt/py/bin/python",
        args=["--flag"],
        env={"GRADIO_SERVER_PORT": "1", "MY": "x"},
        gpu="2",
    )
    assert command.argv[0] == "/opt/py/bin/python"
    assert command.argv[1].endswith("_bootstrap.py")
    assert command.argv[2:] == (str(script.resolve()), "--flag")
    assert command.cwd == tmp_path.resolve()
    assert command.env["SPACERUN_PORT"] == command.env["GRADIO_SERVER_PORT"] == "7000"
    assert command.env["CUDA_VISIBLE_DEVICES"] == "2" and command.env["MY"] == "x"


def test_bootstrap_imports_no_module_of_ours() -> None:
    """It runs under other interpreters (a Space's environment, a cluster node)."""
    source = (Path(__file__).resolve().parents[2] / "runner/launch/_bootstrap.py").read_text()
    imports = re.findall(r"^\s*(?:from|import) ([\w.]+)", source, re.MULTILINE)
    assert imports and not [name for name in imports if name.startswith(("runner", "jobs", "."))]


def test_copies_per_gpu_are_spread_in_order() -> None:
    spec = LocalAppSpec(script=APPS / "module_demo.py", gpus=("0", "1"), per_gpu=2)
    assert spec.copies == 4
    assert [spec.gpu_of(i) for i in range(4)] == ["0", "0", "1", "1"]
    with pytest.raises(ValueError, match="count or gpus"):
        LocalAppSpec(script=APPS / "module_demo.py", gpus=("0",), count=2)


@pytest.mark.parametrize(
    ("log", "port", "elsewhere"),
    [
        ("* Running on local URL:  http://127.0.0.1:7860\n", 7860, None),
        ("* Running on local URL:  http://127.0.0.1:7960\n", 41000, "http://127.0.0.1:7960"),
        (
            "INFO: Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C)",
            41000,
            "http://0.0.0.0:8000",
        ),
        ("* Running on public URL: https://abc.gradio.live\n", 41000, None),
    ],
)
def test_listening_elsewhere_reads_gradio_and_uvicorn_lines(
    log: str, port: int, elsewhere: str | None
) -> None:
    assert listening_elsewhere(log, port) == elsewhere


def test_last_line_takes_a_progress_bar_latest_state() -> None:
    log = "--- spacerun: port 1: python app.py\nLoading: 10%\rLoading: 60%\n\n"
    assert last_line(log) == "Loading: 60%"
    assert last_line("--- spacerun: port 1: python app.py\n") == "(nothing in its log yet)"


def test_gpu_lists_from_cuda_visible_devices_and_nvidia_smi() -> None:
    assert parse_visible_devices("0,2, 3") == ("0", "2", "3")
    assert parse_visible_devices("1,-1,2") == ("1",)
    assert parse_visible_devices("") == ()
    smi = "GPU 0: NVIDIA A100 (UUID: GPU-a)\nGPU 1: NVIDIA A100 (UUID: GPU-b)\n"
    assert parse_nvidia_smi(smi) == ("0", "1")


@pytest.mark.parametrize("visible", ["", "-1"])
async def test_gpus_all_with_every_gpu_hidden_says_what_to_do(visible: str) -> None:
    with pytest.raises(LocalAppError) as caught:
        await find_gpus(
            script=APPS / "module_demo.py",
            label="module_demo.py",
            environ={"CUDA_VISIBLE_DEVICES": visible},
        )
    message = str(caught.value)
    assert (
        f"gpus: all for module_demo.py found no GPU: CUDA_VISIBLE_DEVICES is {visible!r}" in message
    )
    assert "list the devices (gpus: [0, 1])" in message


async def test_gpus_all_reads_cuda_visible_devices() -> None:
    found = await find_gpus(
        script=APPS / "module_demo.py", label="x", environ={"CUDA_VISIBLE_DEVICES": "2,GPU-ab"}
    )
    assert found == ("2", "GPU-ab")
