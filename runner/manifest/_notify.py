"""`run.notify`: webhooks told when a run ends, when failures spike, when it pauses for
long and when the budget stops it.

    run:
      notify: ${SLACK_WEBHOOK}                  # one URL, or a list of them
      notify:
        webhooks: [${SLACK_WEBHOOK}, {url: ${HOOK}, format: json}]
        failure_share: 0.5                      # of the last failure_window rows
        failure_window: 20
        pause_after: 5m

A webhook URL is a secret (it is all it takes to post to the channel): it is kept in a
`Secret`, and a dump of the manifest writes it as its `${VAR}` text, or masked when it
was written literally, so it is never in the run folder, a log or an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._durations import format_duration
from ._fields import Fields
from ._model import Secret
from ._yaml import KeyPath

__all__ = ["NOTIFY_FORMATS", "NotifyFields", "NotifySpec", "Webhook", "dump_notify"]

#: Body shapes: Slack's and Discord's incoming webhooks, and a generic JSON body.
NOTIFY_FORMATS = ("slack", "discord", "json")
NOTIFY_KEYS = ("webhooks", "failure_share", "failure_window", "pause_after")
WEBHOOK_KEYS = ("url", "format")
_MASK = "********"


@dataclass(frozen=True, slots=True)
class Webhook:
    """One URL to post to (never shown: see `shown`), and the body shape it takes."""

    url: Secret
    format: str
    #: What a dump writes in its place: its `${VAR}` text, or the URL masked.
    shown: str

    def __repr__(self) -> str:
        return f"Webhook({self.shown!r}, format={self.format!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifySpec:
    webhooks: tuple[Webhook, ...]
    #: A spike: at least this share of the last `failure_window` finished rows failed.
    failure_share: float = 0.5
    failure_window: int = 20
    #: A pause (a quota, every replica down) this long is told, once per pause.
    pause_after: float = 300.0

    def to_dict(self) -> dict[str, Any]:
        """As a manifest says it, each URL as `Webhook.shown` (never the URL itself)."""
        return dump_notify(self)


def masked(url: str) -> str:
    """`https://hooks.slack.com/********`: where it goes, never the part that grants."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}/{_MASK}" if parts.scheme and host else _MASK


def format_of(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    if host == "hooks.slack.com":
        return "slack"
    if host in ("discord.com", "discordapp.com") or host.endswith(".discord.com"):
        return "discord"
    return "json"


def dump_notify(spec: NotifySpec) -> dict[str, Any]:
    return {
        "webhooks": [
            w.shown if w.format == format_of(w.shown) else {"url": w.shown, "format": w.format}
            for w in spec.webhooks
        ],
        "failure_share": spec.failure_share,
        "failure_window": spec.failure_window,
        "pause_after": format_duration(spec.pause_after),
    }


class NotifyFields(Fields):
    """Reads `run.notify` (a mixin of the manifest's parser)."""

    def notify(self, path: KeyPath, value: Any) -> NotifySpec:
        if isinstance(value, (str, list)):
            value = {"webhooks": value}
            self.move_template(path, (*path, "webhooks"))
        spec = self.section(path, value, NOTIFY_KEYS)
        hooks = spec.get("webhooks")
        hooks_path = (*path, "webhooks")
        if isinstance(hooks, str):
            hooks = [hooks]
            self.move_template(hooks_path, (*hooks_path, 0))
        if not isinstance(hooks, list) or not hooks:
            self.fail(hooks_path, "expected one webhook URL or a list of them")
        webhooks = []
        for index, hook in enumerate(hooks):
            at: KeyPath = (*hooks_path, index)
            fmt = None
            if isinstance(hook, dict):
                entry = self.section(at, hook, WEBHOOK_KEYS)
                if entry.get("format") is not None:
                    fmt = self.choice((*at, "format"), entry["format"], NOTIFY_FORMATS)
                hook = entry.get("url")
                at = (*at, "url")
            url = self._webhook_url(at, hook)
            shown = self.templates.get(at) or masked(url)
            webhooks.append(Webhook(Secret(url), fmt or format_of(url), shown))
        defaults = NotifySpec(webhooks=())
        share = self.number(
            (*path, "failure_share"), spec.get("failure_share", defaults.failure_share)
        )
        if not 0 < share <= 1:
            self.fail((*path, "failure_share"), f"expected a share in (0, 1], got {share:g}")
        return NotifySpec(
            webhooks=tuple(webhooks),
            failure_share=share,
            failure_window=self.integer(
                (*path, "failure_window"), spec.get("failure_window", defaults.failure_window), 1
            ),
            pause_after=self.duration(
                (*path, "pause_after"), spec.get("pause_after", defaults.pause_after)
            ),
        )

    def _webhook_url(self, path: KeyPath, value: Any) -> str:
        # The value is never echoed: a webhook URL is a secret, even a mistyped one.
        if not isinstance(value, str) or urlsplit(value.strip()).scheme not in ("http", "https"):
            self.fail(path, "expected a webhook URL (http:// or https://); the value is not shown")
        if not urlsplit(value.strip()).hostname:
            self.fail(path, "expected a webhook URL with a host; the value is not shown")
        return value.strip()
