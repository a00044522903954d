"""A run folder of any size, written with the store's own writer (no app involved), for
the report's size tests and its benchmark: a matrix manifest, replicas that sometimes
queue, failures of a few causes, image outputs (the files are not written)."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from runner.store import RecordStatus, ResultRecord, ResultsStore, write_manifest, write_summary

MATRIX: dict[str, list[Any]] = {"seed": [1, 2, 3], "guidance": [4.0, 9.5]}
CAUSES = ("Refused: row {row}", "CUDA out of memory at step {n}", "bad prompt")


def write_synthetic_run(root: Path, n: int, *, replicas: int = 3, seed: int = 7) -> Path:
    """Write `n` records (about 2% failed, every 50th without `submitted_at`, as folders
    from before it was recorded), a manifest with a 3 x 2 matrix and a summary."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    combos = [(s, g) for s in MATRIX["seed"] for g in MATRIX["guidance"]]
    with ResultsStore.open(root) as store:
        for i in range(n):
            row, (s, g) = divmod(i, len(combos))[0], combos[i % len(combos)]
            queue, run = rng.expovariate(4.0), 0.2 + rng.expovariate(3.0)
            sent = start + timedelta(seconds=i * 0.05)
            done = sent + timedelta(seconds=queue + run)
            failed = rng.random() < 0.02
            key = _key(i)
            store.append(
                ResultRecord(
                    key=key,
                    row=row,
                    status=RecordStatus.ERROR if failed else RecordStatus.OK,
                    inputs={"prompt": f"prompt number {row}", "seed": s, "guidance": g},
                    outputs=None if failed else {"image": f"files/{key}/image.png"},
                    error_type="AppError" if failed else None,
                    error_message=rng.choice(CAUSES).format(row=row, n=i) if failed else None,
                    replica=f"replica-{i % replicas + 1}",
                    queue_time=round(queue, 4),
                    run_time=round(run, 4),
                    finished_at=done.isoformat(timespec="milliseconds"),
                    submitted_at=None if i % 50 == 0 else sent.isoformat(timespec="milliseconds"),
                )
            )
    write_manifest(
        root,
        {"name": "synthetic", "inputs": {"csv": "prompts.csv", "matrix": MATRIX}},
    )
    write_summary(root, {"name": "synthetic", "total": n, "wall_seconds": n * 0.05})
    return root


def _key(i: int) -> str:
    """A key of the form spacerun makes (20 hex digits of a SHA-256, `runner.inputs`), so
    the results index holds it as compactly as in a real run."""
    return hashlib.sha256(b"synthetic %d" % i).hexdigest()[:20]
