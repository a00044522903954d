"""An Image dataset end to end: PNGs in a `datasets.Image` column on the Hub stand-in,
mirrored by the files app's /image endpoint (a `gr.Image` input), pushed back every
second while the run goes (`every:` as a duration) with the input and output as typed
`Image` columns, and loaded again with `datasets.load_dataset` as images."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.apps import RunningApp
from support.cli import spacerun
from support.hub import HubServer
from support.speech_dataset import hub_python

TOKEN = "hf_alice_images_token"
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
#: Each picture's left and right halves.
HALVES = [(RED, BLUE), (GREEN, RED), (BLUE, GREEN), (RED, GREEN)]


def picture(left: tuple[int, ...], right: tuple[int, ...]) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (8, 4), left)
    image.paste(right, (4, 0, 8, 4))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def image_parquet() -> bytes:
    """The pictures as `datasets` stores an Image column: a struct of bytes and path, with
    the feature in the schema's `huggingface` metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features, Image, Value

    features = Features({"image": Image(), "name": Value("string")})
    names = [f"{n}.png" for n in range(len(HALVES))]
    table = pa.Table.from_pydict(
        {
            "image": [
                {"bytes": picture(*h), "path": n} for h, n in zip(HALVES, names, strict=True)
            ],
            "name": names,
        },
        schema=features.arrow_schema,
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


LOAD_BACK = """
import json, datasets
ds = datasets.load_dataset("alice/pictures-mirrored", split="train")
def halves(image):
    rgb = image.convert("RGB")
    return [list(rgb.getpixel((0, 0))), list(rgb.getpixel((7, 0)))]
print(json.dumps({
    "features": {k: type(v).__name__ for k, v in ds.features.items()},
    "rows": [
        {"status": r["status"], "in": halves(r["path"]), "out": halves(r["Mirrored"])}
        for r in ds
    ],
}))
"""


def near(got: list[int], want: tuple[int, ...]) -> bool:
    """gradio re-encodes an image output (WebP by default, lossy): a colour within a few
    steps of the one sent."""
    return all(abs(a - b) <= 16 for a, b in zip(got, want, strict=True))


@pytest.fixture
def dataset_hub() -> Iterator[HubServer]:
    with HubServer() as hub:
        hub.add_user("alice", token=TOKEN)
        hub.add_dataset("bob/pictures", {"data/train-00000-of-00001.parquet": image_parquet()})
        yield hub


def test_an_image_dataset_is_mirrored_and_pushed_back_with_image_columns(
    dataset_hub: HubServer, files_app: RunningApp, tmp_path: Path
) -> None:
    manifest = tmp_path / "pictures.yaml"
    manifest.write_text(
        "name: pictures\n"
        f"app: {{endpoint: /image, replicas: [{{url: {files_app.url}}}]}}\n"
        "inputs: {dataset: bob/pictures, map: {path: '{image}'}}\n"
        "run: {concurrency: 1, rate: 1/s}\n"  # sending lasts 3 s: pushes fall within
        "output:\n"
        f"  dir: {tmp_path / 'run'}\n"
        "  push_to_hub: {repo: alice/pictures-mirrored, every: 1s}\n"
    )
    env = {"HF_ENDPOINT": dataset_hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "home")}
    done = spacerun("run", str(manifest), env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    media = sorted((tmp_path / "run" / "media").iterdir())
    assert len(media) == len(HALVES) and {p.suffix for p in media} == {".png"}
    repo = dataset_hub.datasets["alice/pictures-mirrored"]
    assert len(repo.branches["main"]) >= 2  # pushed while running, then at the end

    loaded = hub_python(LOAD_BACK, dataset_hub.url, TOKEN, tmp_path / "home")
    assert loaded["features"]["path"] == loaded["features"]["Mirrored"] == "Image"
    rows = loaded["rows"]
    assert len(rows) == len(HALVES) and {r["status"] for r in rows} == {"ok"}
    for left, right in HALVES:
        row = next(r for r in rows if r["in"] == [list(left), list(right)])
        assert near(row["out"][0], right) and near(row["out"][1], left), row
