"""A small audio dataset made here, stored as `datasets` stores one: the demo's espeak-ng
sentences (`sample_manifests/data/speech`, made by its `make_samples.sh`) in a Parquet
file whose `audio` column is a struct of `bytes` and `path` with the `huggingface`
schema metadata of an `Audio` feature (`datasets.Features.arrow_schema`), plus the
sentence as `text`. Written with pyarrow: `datasets` 5 would encode Audio through torch.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .cli import ROOT, cli_env

__all__ = [
    "SPEECH",
    "audio_parquet",
    "hub_python",
    "sentences",
    "word_match",
]

SPEECH = ROOT / "sample_manifests" / "data" / "speech"


def sentences() -> list[tuple[Path, str]]:
    with (SPEECH / "expected.csv").open(newline="") as handle:
        return [(SPEECH / row["file"], row["text"]) for row in csv.DictReader(handle)]


def audio_parquet(rows: list[tuple[Path, str]] | None = None) -> bytes:
    """The dataset as one Parquet file, as the Hub stores a converted dataset."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Audio, Features, Value

    rows = sentences() if rows is None else rows
    features = Features({"audio": Audio(), "text": Value("string")})
    table = pa.Table.from_pydict(
        {
            "audio": [{"bytes": p.read_bytes(), "path": p.name} for p, _ in rows],
            "text": [text for _, text in rows],
        },
        schema=features.arrow_schema,
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def word_match(reference: str, hypothesis: str) -> float:
    """Share of the reference words found, in order, in the hypothesis."""
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    blocks = difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_matching_blocks()
    return sum(block.size for block in blocks) / len(ref)


def hub_python(code: str, hub_url: str, token: str | None, home: Path) -> Any:
    """Run `code` in a fresh interpreter pointed at the Hub stand-in (huggingface_hub and
    `datasets` read HF_ENDPOINT when imported) and return the JSON it prints last."""
    env = {**cli_env(), "HF_ENDPOINT": hub_url, "HF_HOME": str(home)}
    env.pop("HF_TOKEN", None)
    if token is not None:
        env["HF_TOKEN"] = token
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
