"""A replica's pace: how long its jobs run, how long a slot sits empty between two of
them, and so how many jobs to keep waiting in its queue (queue-ahead).

Between one job's end on the app and the next one's start there is our round trip
(the result's last message, the next `queue/join`, the stream's open) plus gradio's
queue hop; a slot sits empty that long if the next job is only sent once a slot is
free. A job already waiting in the app's own queue starts the moment a slot frees. The
number worth keeping there is what the replica's slots finish during one such gap,
`allowed x gap / run time`, with half as much again for the variation, rounded up: a
fast or distant replica gets more, a slow one nearby none or one, so a slow replica
never hoards rows a faster one would finish sooner. It grows one job at a time
towards that (as AIMD grows a window), falls to it at once, and to zero on overload.

The queue is only ours to fill where the app queues what runs beyond `concurrency`
(its own `concurrency_limit` is ours). A job sent ahead that starts while our count says
`allowed` of ours already run means the app runs more at once than the user allowed:
after a few such starts (messages of different streams may arrive out of order) no job
is ever sent ahead to that replica again.

The same figures give the expected finish of a job sent now (`finish_in`), which routes
the last rows of a batch, and decides hedging (`runner.scheduling._hedge`).
"""

from __future__ import annotations

import math

__all__ = ["Pace"]

#: Weight of the newest sample in the moving averages.
_ALPHA = 0.2
#: Headroom over the mean: gaps and run times vary, and a queue that runs dry for one
#: gap costs a slot that gap.
_SLACK = 1.5
#: Ahead jobs seen starting beyond `allowed` before queue-ahead is turned off there.
_OVERRUNS = 3


class Pace:
    """Measured run time and gap of one replica, and its queue-ahead depth."""

    __slots__ = (
        "ahead",
        "cap",
        "checking",
        "depth",
        "gap",
        "overruns",
        "run",
        "running",
        "target",
    )

    def __init__(self, cap: int) -> None:
        #: The most jobs ever kept waiting beyond the window (0: queue-ahead is off).
        self.cap = cap
        #: Mean seconds a job runs on the app (None until one finished).
        self.run: float | None = None
        #: Mean seconds from our send to the app's start, plus from its end to our
        #: result, of jobs that did not wait in a queue (None until one finished).
        self.gap: float | None = None
        #: Jobs kept waiting now (grows by one job per window of successes).
        self.ahead = 0.0
        #: Jobs that may be sent beyond the replica's window now: `ahead`, whole. Kept
        #: as a field, not worked out: every look for a free slot reads it.
        self.depth = 0
        #: What the measurements ask for.
        self.target = 0
        #: Our jobs the app reported running and that have not ended.
        self.running = 0
        self.overruns = 0
        #: A check of a start beyond the window is under way (`Scheduler`).
        self.checking = False

    def __repr__(self) -> str:
        return f"<Pace run={self.run} gap={self.gap} ahead={self.ahead:g}/{self.cap}>"

    def measured(self, run: float | None, total: float, *, direct: bool) -> None:
        """A job ended well after `total` seconds from send to result, having run `run`
        of them; `direct`: it was sent to a free slot (so it waited in no queue of ours)."""
        if run is None or run < 0:
            return
        self.run = run if self.run is None else self.run + _ALPHA * (run - self.run)
        if direct:
            gap = max(0.0, total - run)
            self.gap = gap if self.gap is None else self.gap + _ALPHA * (gap - self.gap)

    def grow(self, allowed: int) -> None:
        """After a success: size the target from the measurements and move towards it."""
        if not self.cap or self.run is None or self.gap is None:
            return
        wanted = _SLACK * allowed * self.gap / max(self.run, 1e-3)
        self.target = min(self.cap, math.ceil(wanted - 0.05)) if wanted > 0.05 else 0
        if self.ahead < 1 <= self.target:
            self.ahead = 1.0
        elif self.ahead < self.target:
            self.ahead = min(float(self.target), self.ahead + 1.0 / max(1.0, self.ahead))
        else:
            self.ahead = float(self.target)
        self.depth = int(self.ahead)

    def overload(self) -> None:
        self.ahead = 0.0
        self.depth = 0

    def overrun(self) -> bool:
        """An ahead job started beyond the window; True when queue-ahead turns off now."""
        self.overruns += 1
        if self.cap and self.overruns >= _OVERRUNS:
            self.cap = 0
            self.ahead = 0.0
            self.depth = 0
            return True
        return False

    def finish_in(self, before: int, allowed: int) -> float | None:
        """Expected seconds until a job sent now ends, `before` jobs being ahead of it
        there (running or queued, ours or not); None before anything was measured."""
        if self.run is None:
            return None
        waits = max(0, before - allowed + 1)
        return (self.gap or 0.0) + self.run * (1.0 + waits / allowed)
