"""Submissions -> outcomes: the loop, the replica pool and its health, throttles, retries."""

from ._pool import AllReplicasDown, Replica, ReplicaPool
from ._retry import AttemptTimeout, RetryPolicy, cause_of, is_overload, retry_after_of
from ._scheduler import Outcome, Scheduler, SchedulerListener, SubmissionLike
from ._throttle import AdaptiveLimit, Clock, RateLimiter, Sleep

__all__ = [
    "AdaptiveLimit",
    "AllReplicasDown",
    "AttemptTimeout",
    "Clock",
    "Outcome",
    "RateLimiter",
    "Replica",
    "ReplicaPool",
    "RetryPolicy",
    "Scheduler",
    "SchedulerListener",
    "Sleep",
    "SubmissionLike",
    "cause_of",
    "is_overload",
    "retry_after_of",
]
