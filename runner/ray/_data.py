"""`GradioCall`: a Gradio app as a Ray Data map, one job per row.

    import ray, runner.ray
    ds = ray.data.read_csv("sentences.csv")
    out = ds.map_batches(
        runner.ray.GradioCall,
        fn_constructor_kwargs={"app": "http://10.0.0.5:7860", "endpoint": "/predict",
                               "map": {"text": "{sentence}"}, "rate": "20/s", "actors": 4},
        concurrency=4, batch_size=64,
    )

Each Ray Data actor holds one `GradioCall`: one `jobs.AsyncClient` (connected on the
first batch, in the actor's event loop) and one replica pool of that app, and runs each
batch through a `runner.scheduling.Scheduler`, so rows are coerced, keyed, retried,
timed out and throttled exactly as in a `spacerun run`: same retry classification
(transient failures retried, the app's own `gr.Error` not unless asked), AIMD on 429s
and full queues, file parameters uploaded from a path or passed as a URL.

Output: the input columns, one column per output of the endpoint (named after its
return labels, as in `results.jsonl`; `output_<i>` without a label, `output_<name>`
where a label is also an input column), and `spacerun_key` (the submission's key, the
same as a manifest run would compute), `status` (`ok`, `error`, `timeout`,
`cancelled`) and `error` (`Type: message`, else None). A row that does not fit the
endpoint is `error` with the validation message; nothing is sent for it.

Rate: `rate` is global, so each actor paces itself at `rate / actors`; give `actors`
the same number as `map_batches(concurrency=...)` (an autoscaling pool: its maximum).
There is no token server: when fewer actors run, the total stays below `rate`.

At-least-once: Ray Data re-runs the batches of a lost actor or node, so a row may be
sent twice and appear twice in the output. Deduplicate on `spacerun_key` (the key is
a hash of what is sent, identical for both copies), keeping an `ok` row.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobs import AppSchema, AsyncClient, Endpoint

from ..inputs import Expander, SourceRow, Submission
from ..manifest import (
    AppSpec,
    InputsSpec,
    Manifest,
    OutputSpec,
    RunSpec,
    SpaceReplica,
    UrlReplica,
    parse_rate,
)
from ..scheduling import (
    AdaptiveLimit,
    Outcome,
    RateLimiter,
    Replica,
    ReplicaPool,
    RetryPolicy,
    Scheduler,
    output_names,
)

__all__ = ["GradioCall"]

_BATCH_FILE = "<ray batch>"


class GradioCall:
    """A callable class for `Dataset.map_batches`: each row of a batch becomes a job of
    `endpoint` on `app` (a URL or a Space id); see the module docstring.

    `map` turns a row into the endpoint's parameters as a manifest's `inputs.map` does
    (`{"text": "{sentence}"}`); without it, each column must be a parameter. `rate`
    (`"10/s"`, or a number per second) is global, split over `actors`; `in_flight` is
    jobs in flight per actor. `download_dir` (a folder the workers can write, e.g. a
    shared mount) saves output files under `<download_dir>/<spacerun_key>/` and gives
    their paths; without it, a file output is its URL on the app's server. Relative
    input file paths are read from `base_dir` (default: the worker's working directory).
    The constructor does no I/O.
    """

    def __init__(
        self,
        app: str,
        endpoint: str | None = None,
        map: Mapping[str, Any] | None = None,
        *,
        rate: str | float | None = None,
        actors: int = 1,
        in_flight: int = 4,
        retries: int = 3,
        retry_app_errors: bool = False,
        retry_timeouts: bool = False,
        timeout: float | None = 600.0,
        hf_token: str | None = None,
        download_dir: str | Path | None = None,
        base_dir: str | Path | None = None,
    ) -> None:
        if actors < 1 or in_flight < 1:
            raise ValueError("actors and in_flight must be at least 1")
        per_second = None if rate is None else parse_rate(rate).per_second
        self.app = app
        self.endpoint = endpoint
        self.rate = None if per_second is None else per_second / actors
        self._map = dict(map) if map is not None else None
        self._in_flight = in_flight
        self._policy = RetryPolicy(
            retries=retries, retry_app_errors=retry_app_errors, retry_timeouts=retry_timeouts
        )
        self._timeout = timeout
        self._token = hf_token
        self._download_dir = None if download_dir is None else Path(download_dir)
        self._base_dir = Path(base_dir) if base_dir is not None else None
        self._pool: ReplicaPool | None = None
        self._limiter: RateLimiter | None = None
        self._expander: Expander | None = None
        self._target: Endpoint | None = None

    def __repr__(self) -> str:
        return f"GradioCall({self.app!r}, {self.endpoint!r}, rate={self.rate} per actor)"

    async def __call__(self, batch: Any) -> dict[str, Any]:
        """One batch (Ray Data's dict of columns, or a pandas DataFrame) -> the same
        columns plus the outputs, `spacerun_key`, `status` and `error`."""
        columns = _columns(batch)
        rows = _rows(columns)
        expander, endpoint = await self._connected()
        results: list[dict[str, Any]] = [{} for _ in rows]
        todo: list[Submission] = []
        for index, row in enumerate(rows):
            source = SourceRow(index=index, file=_BATCH_FILE, line=None, values=row)
            submissions, problems = expander.expand_row(source)
            if problems:
                detail = "; ".join(f"{p.summary} {p.detail}".strip() for p in problems)
                results[index] = {"status": "error", "error": f"ValidationFailed: {detail}"}
            else:
                todo.extend(submissions)
        for outcome in await self._run(todo):
            results[outcome.submission.row] = self._result(endpoint, outcome)
        return _table(columns, results, _output_names(endpoint, columns))

    async def _connected(self) -> tuple[Expander, Endpoint]:
        if self._expander is not None and self._target is not None:
            return self._expander, self._target
        client = await AsyncClient.connect(
            self.app, hf_token=self._token, download_files=self._download_dir is not None
        )
        self._pool = ReplicaPool(
            [Replica(name=self.app, client=client, limit=AdaptiveLimit(maximum=self._in_flight))]
        )
        self._limiter = RateLimiter(self.rate)
        self._expander = Expander(self._manifest(client.schema), client.schema)
        self._target = self._expander.endpoint
        # Rows are expanded against this API: the pool compares the app with it each time
        # it may have restarted, as a run's pool does.
        self._pool.validated = self._target
        return self._expander, self._target

    def _manifest(self, schema: AppSchema) -> Manifest:
        """A manifest holding only what row expansion reads: endpoint, map, base folder."""
        replica = UrlReplica(url=self.app) if "://" in self.app else SpaceReplica(space=self.app)
        base = self._base_dir or Path.cwd()
        return Manifest(
            name="ray-data",
            path=None,
            base_dir=base,
            app=AppSpec(endpoint=self.endpoint, replicas=(replica,)),
            inputs=InputsSpec(map=self._map),
            run=RunSpec(),
            output=OutputSpec(dir=base),
        )

    async def _run(self, todo: list[Submission]) -> list[Outcome]:
        assert self._pool is not None and self._target is not None
        outcomes: list[Outcome] = []
        folder = self._download_dir
        scheduler = Scheduler(
            self._pool,
            on_outcome=outcomes.append,
            endpoint=self._target.api_name,
            rate=self._limiter,
            policy=self._policy,
            timeout=self._timeout,
            download_dir=None if folder is None else (lambda key: folder / key),
        )
        async with self._pool.probing():
            await scheduler.run(todo)
        return outcomes

    def _result(self, endpoint: Endpoint, outcome: Outcome) -> dict[str, Any]:
        error = outcome.error
        out: dict[str, Any] = {
            "spacerun_key": outcome.submission.key,
            "status": outcome.status.value,
            "error": None
            if error is None
            else f"{type(error).__name__}: {getattr(error, 'message', None) or error}",
        }
        if outcome.status.value == "ok":
            bound = outcome.endpoint or endpoint
            values = outcome.value if len(bound.returns) > 1 else (outcome.value,)
            if bound is not endpoint:
                # Computed by the app as it was re-read (outputs maybe in another order):
                # the columns follow the API the rows were expanded against, by label.
                by_label = dict(zip(output_names(bound), values, strict=False))
                values = [by_label.get(name) for name in output_names(endpoint)]
            out["outputs"] = [_plain(v) for v in values]
        return out


def _columns(batch: Any) -> dict[str, Any]:
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # a pandas DataFrame
        return {str(name): batch[name].to_numpy() for name in batch.columns}
    return dict(batch)


def _rows(columns: Mapping[str, Any]) -> list[dict[str, Any]]:
    length = len(next(iter(columns.values()))) if columns else 0
    return [{name: _scalar(values[i]) for name, values in columns.items()} for i in range(length)]


def _scalar(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (what keys and coercion expect)."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _plain(value: Any) -> Any:
    """File data a server returned (not downloaded) as its URL, for a table cell."""
    if isinstance(value, Mapping) and "url" in value and "path" in value:
        return value["url"]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _output_names(endpoint: Endpoint, columns: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for index, ret in enumerate(endpoint.returns):
        name = ret.label or f"output_{index}"
        while name in names or name in columns or name in ("spacerun_key", "status", "error"):
            name = f"output_{name}"
        names.append(name)
    return names


def _table(
    columns: Mapping[str, Any], results: list[dict[str, Any]], names: list[str]
) -> dict[str, Any]:
    import numpy as np

    out = dict(columns)
    for position, name in enumerate(names):
        out[name] = _array(np, [_output(r, position) for r in results])
    for name in ("spacerun_key", "status", "error"):
        out[name] = _array(np, [r.get(name) for r in results])
    return out


def _output(result: Mapping[str, Any], position: int) -> Any:
    outputs = result.get("outputs")
    return None if outputs is None or position >= len(outputs) else outputs[position]


def _array(np: Any, values: list[Any]) -> Any:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
