"""Where each outcome of a run goes the moment it arrives (`OutcomeSink`), and the
scheduler that hands them to it (`run_scheduler`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from jobs import Endpoint

from ..launch import Fleet
from ..manifest import Manifest, Redactor
from ..scheduling import (
    AccountPauses,
    Outcome,
    RateLimiter,
    ReplicaPool,
    RetryPolicy,
    Scheduler,
)
from ..store import DuplicateResultError, RecordStatus, ResultRecord, ResultsStore, RunFolder
from ._notify import Notifier
from ._outcome_record import record_of
from ._progress import Progress
from ._redact import masked_record
from ._summary import SummaryBuilder

__all__ = ["OutcomeSink", "run_scheduler"]

log = logging.getLogger("runner")


class OutcomeSink:
    """Takes each outcome: counted in the summary, told to the notifier, recorded
    (masked) in the results file, handed to `on_record`; then its key is `landed`."""

    def __init__(
        self,
        *,
        store: ResultsStore,
        endpoint: Endpoint,
        folder: RunFolder,
        redactor: Redactor,
        summary: SummaryBuilder,
        notifier: Notifier | None,
        on_record: Callable[[ResultRecord], None] | None,
        landed: Callable[[str], None],
    ) -> None:
        self._store, self._endpoint, self._folder = store, endpoint, folder
        self._redactor, self._summary, self._notifier = redactor, summary, notifier
        self._on_record, self._landed = on_record, landed

    async def __call__(self, outcome: Outcome) -> None:
        key = outcome.submission.key
        try:
            self._summary.add(outcome)
            if self._notifier is not None:
                self._notifier.outcome(outcome)
            if outcome.status is RecordStatus.CANCELLED and outcome.attempts == 0:
                return  # never sent: nothing to record, it simply runs on resume
            record = masked_record(record_of(outcome, self._endpoint, self._folder), self._redactor)
            self._store.append(record)
            if self._on_record is not None:
                self._on_record(record)
        except DuplicateResultError:
            # Cannot happen while identical rows wait for each other; never fatal.
            log.warning("%s was already recorded ok; the second result is dropped", key)
        finally:
            # Only once the record is on disk may an identical row be looked at again.
            self._landed(key)


def run_scheduler(
    manifest: Manifest,
    pool: ReplicaPool,
    sink: OutcomeSink,
    *,
    endpoint: Endpoint,
    fleet: Fleet,
    progress: Progress,
    folder: RunFolder,
) -> Scheduler:
    """The scheduler of a run as its manifest's `run:` section asks, its account pauses
    shown by `progress`."""
    run_spec = manifest.run
    rate = run_spec.rate.per_second if run_spec.rate is not None else None
    pauses = AccountPauses(
        pool.replicas,
        max_wait=run_spec.max_wait,
        lookups=fleet.quota_lookups(),
        on_message=progress.message,
    )
    progress.pause_text = pauses.describe
    return Scheduler(
        pool,
        pauses=pauses,
        on_log=progress.app_log,
        on_outcome=sink,
        endpoint=endpoint.api_name,
        rate=RateLimiter(rate),
        policy=RetryPolicy(
            retries=run_spec.retries,
            retry_app_errors=run_spec.retry_app_errors,
            retry_timeouts=run_spec.retry_timeouts,
        ),
        timeout=run_spec.timeout,
        grace=run_spec.grace,
        share_session=run_spec.share_session,
        hedge=run_spec.hedge,
        download_dir=folder.files_dir if manifest.output.download_files else None,
        listener=progress,
    )
