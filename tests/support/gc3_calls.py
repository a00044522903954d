"""Run inside gradio_client 1.13.3's venv: make the calls given as JSON on stdin
against the 3.x app at argv[1] and print one JSON outcome per call.

stdin: [{"args": [...], "api_name": "/x"} | {"args": [...], "fn_index": 5}, ...]
stdout: [{"value": ...} | {"error": "<exception type>"}, ...]; a file output is
{"file_sha256": ...} so its content can be compared, not its local path.
"""

import hashlib
import json
import os
import sys

from gradio_client import Client


def _outcome(value):
    if isinstance(value, str) and os.path.isfile(value):
        with open(value, "rb") as handle:
            return {"file_sha256": hashlib.sha256(handle.read()).hexdigest()}
    return value


def main() -> None:
    client = Client(sys.argv[1], verbose=False)
    outcomes = []
    for call in json.load(sys.stdin):
        where = {k: call[k] for k in ("api_name", "fn_index") if k in call}
        try:
            value = client.predict(*call["args"], **where)
            outcomes.append({"value": _outcome(value)})
        except Exception as exc:  # the outcome compared is which calls fail
            outcomes.append({"error": type(exc).__name__})
    json.dump(outcomes, sys.stdout)


if __name__ == "__main__":
    main()
