"""What a run still has to send, and the count of what needs no work: rows ok before,
failed before (with `--no-retry-failed`) or identical to one already on its way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Iterator

import numpy as np
from numpy.typing import NDArray

from jobs import AppSchema

from ..inputs import Submission, iter_submissions
from ..manifest import Manifest
from ..store import STATUS_CODES, KeyCache, RecordStatus, ResultsStore
from ._options import RunOptions
from ._progress import Progress
from ._resume import Plan, Skipped, walk

__all__ = ["Needed", "Todo"]

_FAILED = (RecordStatus.ERROR, RecordStatus.TIMEOUT)
_OK_CODE = STATUS_CODES.index(RecordStatus.OK)
_FAILED_CODES = [STATUS_CODES.index(status) for status in _FAILED]
_CHUNK = 262144


class Needed:
    """Whether a key must be sent: not ok, not failed for good (unless retrying
    failures), not an identical row already on its way. `mask` asks it of many keys."""

    def __init__(self, store: ResultsStore, *, retry_failed: bool, in_flight: set[str]) -> None:
        self._store, self._retry_failed, self._in_flight = store, retry_failed, in_flight

    def __call__(self, key: str) -> bool:
        if key in self._in_flight:
            return False
        status = self._store.status_of(key)
        if status is RecordStatus.OK:
            return False
        return not (status in _FAILED and not self._retry_failed)

    def mask(self, chars: NDArray[np.uint8]) -> NDArray[np.bool_]:
        codes = self._store.status_codes(chars)
        done = codes == _OK_CODE
        if not self._retry_failed:
            done |= np.isin(codes, _FAILED_CODES)
        needed: NDArray[np.bool_] = ~done
        if self._in_flight:
            for at in np.flatnonzero(needed):
                needed[at] = chars[at].tobytes().decode("ascii", "replace") not in self._in_flight
        return needed


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
        statuses = _statuses(store, cache, 0, cache.count)
        self.already_ok = statuses[RecordStatus.OK]
        self.failed_kept = statuses[RecordStatus.ERROR] + statuses[RecordStatus.TIMEOUT]

    def _needed(self, store: ResultsStore) -> Needed:
        return Needed(store, retry_failed=self.options.retry_failed, in_flight=self.in_flight_keys)

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
                    self._skipped(_statuses(store, cache, item.start, item.end))
            elif not needed(item.key):
                self._skipped(Counter([store.status_of(item.key)]))
            else:
                self.in_flight_keys.add(item.key)
                yield item

    def _skipped(self, statuses: Counter[RecordStatus | None]) -> None:
        """Count submissions that need no work (`statuses`, the status of each): ok before,
        failed before (and not retried), or identical to one already on its way."""
        ok = statuses[RecordStatus.OK]
        failed = 0 if self.options.retry_failed else sum(statuses[s] for s in _FAILED)
        total = statuses.total()
        self.already_ok += ok
        self.failed_kept += failed
        self.duplicates += total - ok - failed
        self.progress.skip(total)


def _statuses(
    store: ResultsStore, cache: KeyCache, start: int, end: int
) -> Counter[RecordStatus | None]:
    """How many of the cache's keys `start` to `end` have each status (None: no record)."""
    found = np.zeros(len(STATUS_CODES) + 1, dtype=np.int64)
    for first in range(start, end, _CHUNK):
        codes = store.status_codes(cache.key_chars(first, min(first + _CHUNK, end)))
        found += np.bincount(codes.astype(np.intp) + 1, minlength=len(found))
    statuses: Counter[RecordStatus | None] = Counter({None: int(found[0])})
    statuses.update({status: int(n) for status, n in zip(STATUS_CODES, found[1:], strict=True)})
    return statuses
