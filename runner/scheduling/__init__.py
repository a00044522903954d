"""Submissions -> outcomes: the loop, the replica pool and its health, throttles, retries."""

from ._pause import AccountPauses, PauseRecord, QuotaLookup, RunHalted, format_pause
from ._pool import AllReplicasDown, ReplicaPool
from ._replica import Connect, Replica, ReplicaState, ReplicaStats, Revive
from ._retry import AttemptTimeout, RetryPolicy, cause_of, is_overload, retry_after_of
from ._scheduler import Outcome, Scheduler, SchedulerListener, SubmissionLike
from ._signature import ApiChange, api_difference, compare_by_name, output_names, signature_of
from ._stages import StageWatch
from ._throttle import AdaptiveLimit, Clock, RateLimiter, Sleep

__all__ = [
    "AccountPauses",
    "AdaptiveLimit",
    "AllReplicasDown",
    "ApiChange",
    "AttemptTimeout",
    "Clock",
    "Connect",
    "Outcome",
    "PauseRecord",
    "QuotaLookup",
    "RateLimiter",
    "Replica",
    "ReplicaPool",
    "ReplicaState",
    "ReplicaStats",
    "RetryPolicy",
    "Revive",
    "RunHalted",
    "Scheduler",
    "SchedulerListener",
    "Sleep",
    "StageWatch",
    "SubmissionLike",
    "api_difference",
    "cause_of",
    "compare_by_name",
    "format_pause",
    "is_overload",
    "output_names",
    "retry_after_of",
    "signature_of",
]
