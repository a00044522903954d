"""A run's results pushed to the Hugging Face Hub as a dataset (`output.push_to_hub`,
`spacerun push`): typed Audio/Image/Video columns, incremental shards, a key at most
once, an interrupted push finished by the next, and a dataset card without secrets.

Network through huggingface_hub; `datasets` (the `spacerun[datasets]` extra) types the
columns.
"""

from ._card import AppFacts, dataset_card
from ._push import PushReport, push_results
from ._table import file_kind, media_cell

__all__ = ["AppFacts", "PushReport", "dataset_card", "file_kind", "media_cell", "push_results"]
