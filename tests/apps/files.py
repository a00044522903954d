"""File inputs and outputs; launched with max_file_size="100kb".

* /echo_file(file) -> a new file "echo_<name>" holding "echo: " + the input's text.
* /image(image) -> the image mirrored left to right.
* /audio(audio) -> the same audio and its duration in seconds (WAV input).
* /gallery() -> two generated PNGs that are both named "image.png".
* /chat_files(message) -> a chat whose assistant messages hold a text file and an image.
* /evil_name() -> (files with hostile names, FileData-shaped dicts with hostile
  orig_name): see EVIL_BASENAMES / EVIL_ORIG_NAMES below.
"""

from __future__ import annotations

import tempfile
import wave
from pathlib import Path
from typing import Any

import _compat
import gradio as gr
from PIL import Image, ImageOps

# Files the app makes live here; gradio copies outputs into its own cache.
WORK = Path(tempfile.mkdtemp(prefix="files-app-"))


def _new_dir() -> Path:
    return Path(tempfile.mkdtemp(dir=WORK))


def echo_file(file: str) -> str:
    source = Path(file)
    target = _new_dir() / f"echo_{source.name}"
    target.write_text("echo: " + source.read_text(errors="replace"))
    return str(target)


def image(path: str) -> Image.Image:
    with Image.open(path) as img:
        return ImageOps.mirror(img.convert("RGB"))


def audio(path: str) -> tuple[str, float]:
    with wave.open(path, "rb") as wav:
        duration = wav.getnframes() / wav.getframerate()
    return path, round(duration, 3)


def gallery() -> list[tuple[str, str]]:
    items = []
    for caption, color in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        path = _new_dir() / "image.png"
        Image.new("RGB", (8, 8), color).save(path)
        items.append((str(path), caption))
    return items


def chat_files(message: str) -> list[dict[str, Any]]:
    text = _new_dir() / "notes.txt"
    text.write_text(f"notes about {message}")
    picture = _new_dir() / "picture.png"
    Image.new("RGB", (4, 4), (0, 255, 0)).save(picture)
    return [
        {"role": "user", "content": message},
        {"role": "assistant", "content": f"Here are files about {message}."},
        {"role": "assistant", "content": {"path": str(text)}},
        {"role": "assistant", "content": {"path": str(picture)}},
    ]


# What gradio 6.31 lets through (checked on the wire):
# * A file component (gr.File) sends orig_name = the basename of the returned path,
#   unsanitised (its `path` in the cache is sanitised). A basename cannot hold "/",
#   so the nastiest are Windows separators, control characters and shell syntax.
# * gr.JSON sends dicts untouched, so a FileData-shaped dict can carry any
#   orig_name ("../../escape.txt", "/etc/evil") and point at a file the server
#   serves (WORK is in allowed_paths); gradio_client treats such dicts as files.
EVIL_BASENAMES = [
    "..\\..\\escape.txt",
    "line\nbreak\r.txt",
    "-rf *.txt",
    "CON",
    "$(touch pwned)`x`.txt",
    " .txt",
    "e" * 251 + ".txt",  # 255 bytes, the longest a file name can be
]
EVIL_ORIG_NAMES = ["../../escape.txt", "/etc/evil", "..", "", "sub/../../../escape.txt"]


def evil_name() -> tuple[list[str], list[dict[str, Any]]]:
    files = []
    for name in EVIL_BASENAMES:
        path = _new_dir() / name
        path.write_text(f"payload for {name!r}")
        files.append(str(path))
    forged = []
    for name in EVIL_ORIG_NAMES:
        path = _new_dir() / "payload.txt"
        path.write_text(f"payload for {name!r}")
        forged.append({"path": str(path), "orig_name": name, "meta": {"_type": "gradio.FileData"}})
    return files, forged


with gr.Blocks(title="files") as demo:
    file_in = gr.File(label="File", type="filepath")
    file_out = gr.File(label="Echoed file")
    gr.Button("Echo").click(echo_file, inputs=file_in, outputs=file_out, api_name="echo_file")

    image_in = gr.Image(label="Image", type="filepath")
    image_out = gr.Image(label="Mirrored")
    gr.Button("Mirror").click(image, inputs=image_in, outputs=image_out, api_name="image")

    audio_in = gr.Audio(label="Audio", type="filepath")
    audio_out = gr.Audio(label="Same audio")
    duration = gr.Number(label="Duration")
    gr.Button("Audio").click(
        audio, inputs=audio_in, outputs=[audio_out, duration], api_name="audio"
    )

    pictures = gr.Gallery(label="Gallery")
    gr.Button("Gallery").click(gallery, inputs=None, outputs=pictures, api_name="gallery")

    message = gr.Textbox(label="Message")
    bot = _compat.chatbot(label="Chat")
    message.submit(chat_files, inputs=message, outputs=bot, api_name="chat_files")

    evil_files = gr.File(label="Evil files", file_count="multiple")
    evil_json = gr.JSON(label="Forged files")
    gr.Button("Evil").click(
        evil_name, inputs=None, outputs=[evil_files, evil_json], api_name="evil_name"
    )

if __name__ == "__main__":
    _compat.launch(demo, max_file_size="100kb", allowed_paths=[str(WORK)])
