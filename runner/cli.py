"""`spacerun`: the command line.

Exit status: 0 all ok, 1 some rows failed (or do not fit the app), 2 bad input (a
malformed manifest or command line), 130 interrupted. No traceback reaches the user
for an input mistake: every `RunnerError` and `JobsError` is printed as a message.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import __version__

from .errors import ExitStatus, anticipated

# Each command imports the layers it uses when it runs (`status` reads a run folder and
# never loads the client, `--help` loads nothing): a command line answers at once.
if TYPE_CHECKING:
    from .manifest import Manifest

__all__ = ["main"]

DESCRIPTION = """\
Run batches of jobs against Gradio apps: a manifest (YAML, or a CSV of rows) is sent
row by row to one or more replicas of an app, throttled, retried, cancellable with
Ctrl-C, with every result streamed to disk. Run the same command again to resume."""

EPILOG = """\
examples:
  spacerun run sample_manifests/transcribe.yaml       run (or resume) a batch
  spacerun run rows.csv --app owner/space --endpoint /predict
  spacerun validate manifest.yaml                     check every row, send nothing
  spacerun view-api http://127.0.0.1:7860             what an app accepts
  spacerun status runs/transcribe-demo                counts and last failures
  spacerun export runs/transcribe-demo --format parquet
  spacerun report runs/transcribe-demo               write (or refresh) report.html
  spacerun watch runs/transcribe-demo                the report, live, on http://127.0.0.1:8765/

exit status: 0 all ok, 1 some rows failed, 2 bad input, 130 interrupted."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spacerun",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"spacerun {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (
        _add_run,
        _add_validate,
        _add_view_api,
        _add_status,
        _add_export,
        _add_push,
        _add_report,
        _add_watch,
    ):
        add(commands)
    return parser


if TYPE_CHECKING:
    # argparse's subparsers type is private, but it is what add_subparsers returns.
    _Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_run(commands: _Commands) -> None:
    run_p = commands.add_parser(
        "run",
        help="run (or resume) a batch",
        description="Run every row of MANIFEST against the app, or resume its run folder: "
        "rows already ok are skipped without contacting any app.",
    )
    _manifest_args(run_p)
    run_p.add_argument(
        "--restart",
        action="store_true",
        help="start over: the old run folder is set aside, not deleted",
    )
    run_p.add_argument(
        "--retry-failed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run rows that failed for good in an earlier run again (default: yes)",
    )
    run_p.add_argument(
        "--live-report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="rewrite report.html while the run goes (default: yes); --no-live-report "
        "writes it once, at the end",
    )
    run_p.add_argument(
        "--progress",
        choices=["auto", "bar", "json", "plain"],
        default="auto",
        help="bar on a terminal (default), JSON lines, or plain messages",
    )
    run_p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def _add_validate(commands: _Commands) -> None:
    val_p = commands.add_parser(
        "validate",
        help="check a manifest and every row against the app; send nothing",
        description="Load MANIFEST, read the app's API from one replica and check every "
        "row. Problems are listed together, grouped; exit 1 if any.",
    )
    _manifest_args(val_p)


def _add_view_api(commands: _Commands) -> None:
    api_p = commands.add_parser("view-api", help="show an app's endpoints and parameters")
    api_p.add_argument("app", help="a URL or a Space id (owner/name)")
    api_p.add_argument(
        "--hf-token",
        default=None,
        help="token for a private Space (default: $HF_TOKEN or the saved Hugging Face login)",
    )
    api_p.add_argument("--all", action="store_true", help="include undocumented endpoints")
    api_p.add_argument("--json", action="store_true", help="print JSON")


def _add_status(commands: _Commands) -> None:
    st_p = commands.add_parser(
        "status",
        help="counts and last failures of a run folder",
        description="Read RUN_DIR only; no app is contacted.",
    )
    st_p.add_argument("run_dir", type=Path)
    st_p.add_argument("--json", action="store_true", help="print JSON")


def _add_export(commands: _Commands) -> None:
    ex_p = commands.add_parser(
        "export",
        help="write a run's results as a table",
        description="One row per submission (its latest record), inputs and outputs as columns.",
    )
    ex_p.add_argument("run_dir", type=Path)
    ex_p.add_argument("--format", choices=["csv", "parquet", "jsonl"], default="csv")
    ex_p.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/export.FORMAT")


def _add_push(commands: _Commands) -> None:
    push_p = commands.add_parser(
        "push",
        help="push a run's results to the Hugging Face Hub as a dataset",
        description="Push what RUN_DIR holds and the repo lacks (new shards, a key at most "
        "once, its latest record) with a dataset card; the token is HF_TOKEN or your login. "
        "Needs spacerun[datasets].",
    )
    push_p.add_argument("run_dir", type=Path)
    push_p.add_argument("repo", help="the dataset repo, owner/name (made if missing)")
    push_p.add_argument(
        "--public", action="store_true", help="make the repo public (default: private)"
    )


def _add_report(commands: _Commands) -> None:
    rep_p = commands.add_parser(
        "report",
        help="write a run's report.html (timeline, latency, failures, gallery)",
        description="Read RUN_DIR only (no app is contacted; safe while a run is going) "
        "and write one self-contained HTML file that opens offline.",
    )
    rep_p.add_argument("run_dir", type=Path)
    rep_p.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/report.html")


def _add_watch(commands: _Commands) -> None:
    watch_p = commands.add_parser(
        "watch",
        help="serve a run's report on a local port, following the run as records arrive",
        description="Read RUN_DIR only (a run going on this machine or another one writing "
        "to a shared disk) and serve its report, rebuilt as records arrive; the page "
        "follows by itself until the run ends. Ctrl-C stops serving.",
    )
    watch_p.add_argument("run_dir", type=Path)
    watch_p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: loopback only)"
    )
    watch_p.add_argument("--port", type=int, default=8765, help="default: 8765 (0: any free)")


def _manifest_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", help="a YAML manifest, or a CSV/JSONL/Parquet file of rows")
    parser.add_argument(
        "--app",
        default=None,
        help="the app: a URL, a Space id (owner/name) or an app script (.py); "
        "replaces the manifest's replicas",
    )
    parser.add_argument("--endpoint", default=None, help="the api_name, e.g. /predict")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a manifest value, e.g. --set run.concurrency=8 (repeatable)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(_COMMANDS[args.command](args))
    except BaseException as exc:
        err = anticipated(exc)
        if err is None:
            if isinstance(exc, KeyboardInterrupt):
                print("spacerun: interrupted", file=sys.stderr)
                return ExitStatus.INTERRUPTED
            raise
        # An error may quote an input, or an app's message that echoes one back; only a
        # loaded manifest (`_load`) has secrets to mask.
        redactor = getattr(args, "redactor", None)
        message = str(err) if redactor is None else redactor.mask(str(err))
        print(f"spacerun: {message}", file=sys.stderr)
        return int(getattr(err, "exit_status", ExitStatus.FAILED))


def _load(args: argparse.Namespace) -> Manifest:
    """The manifest of `run` / `validate`; from then on, its secrets are masked in what
    this process logs and in the error it may end with (`args.redactor`)."""
    from .manifest import load_manifest
    from .run import RedactingFilter

    manifest = load_manifest(
        args.manifest, app=args.app, endpoint=args.endpoint, overrides=args.overrides
    )
    args.redactor = manifest.redactor
    if manifest.redactor:
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactingFilter(manifest.redactor))
    return manifest


def _run(args: argparse.Namespace) -> int:
    from .run import RunOptions, run

    manifest = _load(args)
    command = ["spacerun", "run", *_original_args(args)]
    options = RunOptions(
        restart=args.restart,
        retry_failed=args.retry_failed,
        live_report=RunOptions().live_report if args.live_report else None,
        progress="quiet" if args.quiet else args.progress,
        command=command,
    )
    summary = run(manifest, options)
    return int(summary.exit_status)


def _original_args(args: argparse.Namespace) -> list[str]:
    out = [args.manifest]
    if args.app:
        out += ["--app", args.app]
    if args.endpoint:
        out += ["--endpoint", args.endpoint]
    for override in args.overrides:
        out += ["--set", override]
    return out


def _validate(args: argparse.Namespace) -> int:
    import anyio

    from .run import validate_manifest

    manifest = _load(args)
    report = anyio.run(validate_manifest, manifest)
    print(report.format())
    return int(report.exit_status)


def _view_api(args: argparse.Namespace) -> int:
    import anyio

    from jobs import AsyncClient

    async def show() -> Any:
        async with AsyncClient(args.app, hf_token=args.hf_token) as client:
            return client.view_api(
                all_endpoints=args.all,
                print_info=not args.json,
                return_format="dict" if args.json else None,
            )

    info = anyio.run(show)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    return 0


def _status(args: argparse.Namespace) -> int:
    from .store import read_status

    try:
        status = read_status(args.run_dir)
    except FileNotFoundError as exc:
        print(f"spacerun: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    if args.json:
        print(json.dumps(status.to_dict(), indent=2, default=str))
    else:
        print(status.format())
    return 0


def _export(args: argparse.Namespace) -> int:
    from .store import export  # pandas: loaded only for this command

    path = export(args.run_dir, args.format, out=args.out)
    print(path)
    return 0


def _push(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from .push import push_results
    from .store import RunFolder

    if not RunFolder(root=args.run_dir).results_path.is_file():
        print(f"spacerun: {args.run_dir} holds no results.jsonl: not a run folder", file=sys.stderr)
        return ExitStatus.USAGE
    try:
        report = push_results(args.run_dir, args.repo, private=not args.public)
    except HfHubHTTPError as exc:
        print(f"spacerun: the push to {args.repo} failed: {exc}", file=sys.stderr)
        return ExitStatus.FAILED
    if report.commit is None:
        print(f"{args.repo} already holds every result of {args.run_dir}")
    else:
        print(
            f"pushed {report.rows_added} new and {report.rows_replaced} updated results to "
            f"{args.repo} ({report.bytes:,} bytes, commit {report.commit[:12]})"
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    from .store import build_report  # jinja2 and numpy: loaded only for this command

    try:
        path = build_report(args.run_dir, out=args.out)
    except FileNotFoundError as exc:
        print(f"spacerun: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    print(path)
    return 0


def _watch(args: argparse.Namespace) -> int:
    from .run import WatchServer

    try:
        server = WatchServer(args.run_dir, host=args.host, port=args.port)
    except FileNotFoundError as exc:
        print(f"spacerun: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    print(f"serving the report of {args.run_dir} on {server.url} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # the way to stop watching
        server.serve_forever()
    return 0


_COMMANDS = {
    "run": _run,
    "validate": _validate,
    "view-api": _view_api,
    "status": _status,
    "export": _export,
    "push": _push,
    "report": _report,
    "watch": _watch,
}

if __name__ == "__main__":
    sys.exit(main())
