"""A resume against an app whose API is not the one its rows were validated against:
what is said, or why the run stops, before anything is sent."""

from __future__ import annotations

from collections.abc import Callable

from jobs import AppSchema, JobsError

from ..errors import ApiChanged
from ..scheduling import compare_by_name
from ._resume import ValidationStamp

__all__ = ["say_api_change"]


def say_api_change(
    stamp: ValidationStamp, schema: AppSchema, endpoint: str | None, say: Callable[[str], None]
) -> None:
    """Say what changed since `stamp` in the app's `endpoint`. Rows that still fit by
    name are validated against it again; a change they do not fit stops the run
    (`ApiChanged`): the folder's results came from the other API."""
    try:
        before = stamp.app_schema().endpoint(endpoint)
    except (JobsError, ValueError, KeyError):
        return  # a stamp of another endpoint (or unreadable): validation decides
    change = compare_by_name(before, schema, endpoint)
    if change is None:
        return  # the endpoint is the same; something else of the app changed
    if not change.fits:
        raise ApiChanged(
            f"the app's API changed since this run folder's results were computed, in a "
            f"way its rows do not fit: {change.description}. Point the manifest at the "
            "app the run was validated against to resume, or give the new app a new "
            "run folder (output.dir, or --restart to set this one aside)"
        )
    say(
        f"the app's API changed since the last run: {change.description}; the rows "
        "still fit it by name, and are validated against it again before anything is sent"
    )
