"""`runner.map` over a `datasets.Dataset` / `IterableDataset`, and its result as a Dataset.

The rows are written once into the run folder as Parquet with their features (the
`huggingface` schema metadata), in the Hub's layout, and read back as `inputs.dataset`,
so Audio/Image/Video cells become files as for any dataset source, and a resume reads
the same file. The file is replaced only when the rows changed (then its pin is dropped,
as the rows are new). `as_dataset=True` returns a `datasets.Dataset`: the input columns
with their features, `outputs.<name>` (audio, image and video files as typed columns
with their bytes), `status`, `error`, `key`.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..inputs import media_columns
from ..store import RunFolder

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["dataset_result", "is_dataset", "write_dataset"]

_SHARD = "data/train-00000-of-00001.parquet"
_BATCH = 1000


def is_dataset(rows: Any) -> bool:
    return type(rows).__module__.split(".")[0] == "datasets" and hasattr(rows, "features")


def write_dataset(rows: Any, run: RunFolder) -> Path:
    """Write `rows` into the run folder as a dataset folder; its path."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = run.inputs_dataset_dir
    target = folder / _SHARD
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if isinstance(rows, datasets.Dataset):
        rows.to_parquet(str(tmp))
    else:
        stream = rows
        for name, kind in media_columns(rows).items():
            stream = stream.cast_column(name, getattr(datasets, kind)(decode=False))
        schema = rows.features.arrow_schema if rows.features is not None else None
        writer = None
        try:
            for batch in stream.iter(batch_size=_BATCH):
                table = pa.Table.from_pydict(batch, schema=schema)
                writer = writer or pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise ValueError("runner.map was given an empty dataset")
    if target.exists() and filecmp.cmp(tmp, target, shallow=False):
        tmp.unlink()
    else:
        os.replace(tmp, target)
        run.dataset_pin_path.unlink(missing_ok=True)  # new rows: pinned anew
    return folder


def input_frame(root: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    frame: pd.DataFrame = pq.read_table(
        RunFolder(root=root).inputs_dataset_dir / _SHARD
    ).to_pandas()
    return frame


def dataset_result(frame: pd.DataFrame, root: Path) -> Any:
    """`frame` (what `runner.map` returns as a DataFrame) as a typed `datasets.Dataset`."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..push import file_kind, media_cell

    shard = RunFolder(root=root).inputs_dataset_dir / _SHARD
    source = datasets.Features.from_arrow_schema(pq.read_schema(shard)) if shard.exists() else {}
    columns: dict[str, list[Any]] = {}
    features: dict[str, Any] = {}
    for name in frame.columns:
        values = frame[name].tolist()
        kind = file_kind(values, root) if str(name).startswith("outputs.") else None
        if kind is not None:
            values = [media_cell(v, root) for v in values]
            features[str(name)] = getattr(datasets, kind)(decode=False)
        elif name in source:
            features[str(name)] = source[name]
            if type(source[name]).__name__ in ("Audio", "Image", "Video"):
                features[str(name)] = type(source[name])(decode=False)
        columns[str(name)] = [None if _missing(v) else v for v in values]
    plain = {k: v for k, v in columns.items() if k not in features}
    inferred = datasets.Features.from_arrow_schema(pa.Table.from_pydict(plain).schema)
    ordered = datasets.Features(
        {k: features[k] if k in features else _text_if_null(inferred[k]) for k in columns}
    )
    table = pa.Table.from_pydict(columns, schema=ordered.arrow_schema)
    info = datasets.DatasetInfo(features=ordered)
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=info)


def _text_if_null(feature: Any) -> Any:
    import datasets

    if isinstance(feature, datasets.Value) and feature.dtype == "null":
        return datasets.Value("string")
    return feature


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
