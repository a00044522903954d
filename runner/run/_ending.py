"""How a run ends, however it ends: its summary (`summary.json`, the exports, the text
shown), and its report (`report.html`)."""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass

from ..launch import Fleet
from ..manifest import Manifest
from ..scheduling import AccountPauses, Replica, ReplicaPool
from ..store import RecordStatus, ResultsStore, RunFolder, write_summary
from ._elastic import ElasticControl
from ._options import RunHandle, RunOptions
from ._progress import Progress
from ._summary import RunSummary, SummaryBuilder, format_summary
from ._todo import Counts

__all__ = ["Ending"]

log = logging.getLogger("runner")


@dataclass(slots=True, kw_only=True)
class Ending:
    """What a run's summary is made of beyond its counts, filled in as the run goes, and
    the summary once written (`summary`)."""

    manifest: Manifest
    options: RunOptions
    handle: RunHandle
    folder: RunFolder
    progress: Progress
    fleet: Fleet
    outcomes: SummaryBuilder
    #: When the run started (`time.monotonic()`): its wall time is counted from here.
    started: float
    interrupted: bool = False
    pauses: AccountPauses | None = None
    elastic: ElasticControl | None = None
    halted_by: str | None = None
    pool: ReplicaPool | None = None
    summary: RunSummary | None = None

    def finish(
        self,
        store: ResultsStore,
        counts: Counts,
        *,
        total: int | None,
        replicas: list[Replica],
        stopped_by: str | None = None,
    ) -> RunSummary:
        """Write the summary and the exports, show the summary, and return it."""
        redactor = self.manifest.redactor
        mask = redactor.mask
        done = counts.already_ok + counts.duplicates + self.outcomes.counts[RecordStatus.OK.value]
        summary = self.outcomes.build(
            name=self.manifest.name,
            run_dir=str(self.folder.root),
            wall=time.monotonic() - self.started,
            total=total,
            skipped=counts.already_ok,
            done=done,
            failed_kept=counts.failed_kept,
            duplicates=counts.duplicates,
            folder_counts={s.value: n for s, n in store.counts().items()},
            replicas=replicas,
            interrupted=self.interrupted or self.handle.stopped or self.halted_by is not None,
            resume_command=self._resume_command(),
            stopped_by=None if stopped_by is None else mask(stopped_by),
            halted_by=None if self.halted_by is None else mask(self.halted_by),
            pauses=self.pauses.records if self.pauses is not None else (),
            costs=self.fleet.costs(),
            fleet=self.elastic.records if self.elastic is not None else (),
            api_changes=self.pool.api_changes if self.pool is not None else (),
        )
        write_summary(self.folder.root, redactor.mask_value(summary.to_dict()))
        self.summary = summary
        for fmt in self.manifest.output.export:
            self._export(fmt)
        if self.progress.mode != "quiet":
            self.progress.message(format_summary(summary))
        return summary

    def report(self) -> None:
        """Write `report.html`, however the run ended (the results file is closed by now).
        A report that cannot be written is logged, never what the run ends with."""
        from ..store import build_report  # jinja2 and plotly: loaded once a run is over

        try:
            path = build_report(self.folder.root)
        except Exception:
            log.warning("could not write the report of %s", self.folder.root, exc_info=True)
            return
        if self.progress.mode != "quiet":
            self.progress.message(f"report: {path}")

    def _export(self, fmt: str) -> None:
        if self.folder.export_is_current(fmt):
            return  # nothing new since the last export
        from ..store import export  # pandas, loaded only when a run exports

        export(self.folder.root, fmt)  # type: ignore[arg-type]

    def _resume_command(self) -> str:
        command = list(self.options.command or ["spacerun", "run", str(self.manifest.display_path)])
        command = [c for c in command if c != "--restart"]
        return shlex.join(command)
