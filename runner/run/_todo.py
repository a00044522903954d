"""What a run still has to send, and the count of what needs no work: rows ok before,
failed before (with `--no-retry-failed`) or identical to one already on its way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Iterator

from jobs import AppSchema

from ..inputs import Submission, iter_submissions
from ..manifest import Manifest
from ..store import KeyCache, RecordStatus, ResultsStore
from ._options import RunOptions
from ._progress import Progress
from ._resume import Plan, Skipped, walk

__all__ = ["Todo"]

_FAILED = (RecordStatus.ERROR, RecordStatus.TIMEOUT)


class Todo:
    """The submissions to send, drawn lazily from the manifest (or the key cache)."""

    def __init__(self, manifest: Manifest, options: RunOptions, progress: Progress) -> None:
        self.manifest = manifest
        self.options = options
        self.progress = progress
        self._cache: KeyCache | None = None
        self.in_flight_keys: set[str] = set()
        # Submissions skipped this run: ok before, failed before (--no-retry-failed),
        # identical to one already on its way.
        self.already_ok = self.failed_kept = self.duplicates = 0

    def _reset_counts(self) -> None:
        self.already_ok = self.failed_kept = self.duplicates = 0
        self.in_flight_keys.clear()
        self.progress.skipped = 0

    def _count_done(self, store: ResultsStore, cache: KeyCache) -> None:
        statuses = Counter(map(store.status_of, cache.keys()))
        self.already_ok = statuses[RecordStatus.OK]
        self.failed_kept = statuses[RecordStatus.ERROR] + statuses[RecordStatus.TIMEOUT]

    def _needed(self, store: ResultsStore) -> Callable[[str], bool]:
        """Whether a key must be sent: not ok, not failed for good (unless retrying
        failures), not an identical row already on its way."""
        retry_failed = self.options.retry_failed
        in_flight = self.in_flight_keys

        def needed(key: str) -> bool:
            if key in in_flight:
                return False
            status = store.status_of(key)
            if status is RecordStatus.OK:
                return False
            return not (status in _FAILED and not retry_failed)

        return needed

    def _todo(
        self, store: ResultsStore, schema: AppSchema, the_plan: Plan | None
    ) -> Generator[Submission, None, None]:
        needed = self._needed(store)
        cache = self._cache
        source: Iterator[Submission | Skipped]
        if self.options.fast_resume:
            source = walk(self.manifest, schema, cache, needed, plan_=the_plan)
        else:
            source = iter_submissions(self.manifest, schema)
        for item in source:
            if isinstance(item, Skipped):
                if item.all_ok:
                    self.already_ok += item.end - item.start
                    self.progress.skip(item.end - item.start)
                else:
                    assert cache is not None
                    self._skipped(store, cache.keys(item.start, item.end))
            elif not needed(item.key):
                self._skipped(store, [item.key])
            else:
                self.in_flight_keys.add(item.key)
                yield item

    def _skipped(self, store: ResultsStore, keys: list[str]) -> None:
        """Count submissions that need no work: ok before, failed before (and not retried),
        or identical to one already on its way."""
        statuses = Counter(map(store.status_of, keys))
        ok = statuses[RecordStatus.OK]
        failed = 0 if self.options.retry_failed else sum(statuses[s] for s in _FAILED)
        self.already_ok += ok
        self.failed_kept += failed
        self.duplicates += len(keys) - ok - failed
        self.progress.skip(len(keys))
