"""What a run still has to send, and the count of what needs no work: rows ok before,
failed before (with `--no-retry-failed`) or identical to one already on its way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from jobs import AppSchema

from ..inputs import Submission, iter_submissions
from ..manifest import Manifest
from ..store import STATUS_CODES, KeyCache, RecordStatus, ResultsStore
from ._options import RunOptions
from ._progress import Progress
from ._resume import Plan, Skipped, walk

__all__ = ["Counts", "Needed", "Todo"]

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


@dataclass(slots=True)
class Counts:
    """Submissions this run skipped: ok before, failed before and kept
    (`--no-retry-failed`), identical to one already on its way."""

    already_ok: int = 0
    failed_kept: int = 0
    duplicates: int = 0


class Todo:
    """The submissions to send, drawn lazily from the manifest (or the key cache), and
    the counts of those skipped. It owns the run's key cache (`use_cache`) and the keys
    on their way (`landed` once recorded); close it to close the cache."""

    def __init__(
        self, manifest: Manifest, options: RunOptions, progress: Progress, store: ResultsStore
    ) -> None:
        self._manifest = manifest
        self._retry_failed = options.retry_failed
        self._fast_resume = options.fast_resume
        self._progress = progress
        self._store = store
        self.cache: KeyCache | None = None
        self.counts = Counts()
        self._in_flight: set[str] = set()

    def __enter__(self) -> Todo:
        return self

    def __exit__(self, *_: object) -> None:
        self.use_cache(None)

    def use_cache(self, cache: KeyCache | None) -> None:
        """Draw from `cache` from now on (closing the one used before)."""
        if self.cache is not None:
            self.cache.close()
        self.cache = cache

    def landed(self, key: str) -> None:
        """`key`'s outcome is recorded: an identical row may be looked at again."""
        self._in_flight.discard(key)

    def reset(self) -> None:
        """Forget what was drawn (the rows are validated and drawn again from scratch)."""
        self.counts = Counts()
        self._in_flight.clear()
        self._progress.skipped = 0

    def count_done(self) -> None:
        """Count the cache's keys as skipped (a resume with nothing left to send)."""
        assert self.cache is not None
        statuses = _statuses(self._store, self.cache, 0, self.cache.count)
        self.counts.already_ok = statuses[RecordStatus.OK]
        self.counts.failed_kept = statuses[RecordStatus.ERROR] + statuses[RecordStatus.TIMEOUT]

    def needed(self) -> Needed:
        return Needed(self._store, retry_failed=self._retry_failed, in_flight=self._in_flight)

    def submissions(
        self, schema: AppSchema, the_plan: Plan | None
    ) -> Generator[Submission, None, None]:
        """What is left to send, in order, counting what is skipped on the way."""
        needed = self.needed()
        cache = self.cache
        source: Iterator[Submission | Skipped]
        if self._fast_resume:
            source = walk(self._manifest, schema, cache, needed, plan_=the_plan)
        else:
            source = iter_submissions(self._manifest, schema)
        for item in source:
            if isinstance(item, Skipped):
                if item.all_ok:
                    self.counts.already_ok += item.end - item.start
                    self._progress.skip(item.end - item.start)
                else:
                    assert cache is not None
                    self._skipped(_statuses(self._store, cache, item.start, item.end))
            elif not needed(item.key):
                self._skipped(Counter([self._store.status_of(item.key)]))
            else:
                self._in_flight.add(item.key)
                yield item

    def _skipped(self, statuses: Counter[RecordStatus | None]) -> None:
        """Count submissions that need no work (`statuses`, the status of each): ok before,
        failed before (and not retried), or identical to one already on its way."""
        ok = statuses[RecordStatus.OK]
        failed = 0 if self._retry_failed else sum(statuses[s] for s in _FAILED)
        total = statuses.total()
        self.counts.already_ok += ok
        self.counts.failed_kept += failed
        self.counts.duplicates += total - ok - failed
        self._progress.skip(total)


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
