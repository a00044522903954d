"""Submissions -> outcomes: the loop, the replica pool and its health, throttles, retries."""

from ._pool import AllReplicasDown, ReplicaPool
from ._replica import Connect, Replica, ReplicaState, ReplicaStats
from ._retry import AttemptTimeout, RetryPolicy, cause_of, is_overload, retry_after_of
from ._scheduler import Outcome, Scheduler, SchedulerListener, SubmissionLike
from ._signature import api_difference
from ._throttle import AdaptiveLimit, Clock, RateLimiter, Sleep

__all__ = [
    "AdaptiveLimit",
    "AllReplicasDown",
    "AttemptTimeout",
    "Clock",
    "Connect",
    "Outcome",
    "RateLimiter",
    "Replica",
    "ReplicaPool",
    "ReplicaState",
    "ReplicaStats",
    "RetryPolicy",
    "Scheduler",
    "SchedulerListener",
    "Sleep",
    "SubmissionLike",
    "api_difference",
    "cause_of",
    "is_overload",
    "retry_after_of",
]
