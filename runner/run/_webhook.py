"""Posting one notification to the webhooks of `run.notify`, in the body each takes.

Slack's incoming webhooks take `{"text": ...}`, Discord's `{"content": ...}` (2000
characters at most); anything else gets a generic JSON body: the event, the text, the
run's name and, when there is one, its data (the summary at the end). One POST per
webhook, a short timeout, no retries: a webhook that fails is logged (by its number and
format, never its URL, which is a secret) and never fails the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..manifest import Webhook

__all__ = ["Notification", "UrlMask", "post_all"]

log = logging.getLogger("runner")

TIMEOUT = 10.0
_DISCORD_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Notification:
    """What happened (`event`: end, failures, paused, budget), said as one text."""

    event: str
    run: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


def body_of(webhook: Webhook, note: Notification) -> dict[str, Any]:
    if webhook.format == "slack":
        return {"text": note.text}
    if webhook.format == "discord":
        text = note.text
        return {
            "content": text if len(text) <= _DISCORD_LIMIT else text[: _DISCORD_LIMIT - 1] + "…"
        }
    return {"event": note.event, "run": note.run, "text": note.text, "data": dict(note.data)}


async def post_all(
    client: httpx.AsyncClient, webhooks: Sequence[Webhook], note: Notification
) -> int:
    """Post `note` to every webhook; returns how many took it (a 2xx answer)."""
    delivered = 0
    for number, webhook in enumerate(webhooks, 1):
        try:
            response = await client.post(webhook.url.reveal(), json=body_of(webhook, note))
        except httpx.HTTPError as exc:
            # The exception's text may hold the URL: only its kind is logged.
            log.warning(
                "notify: webhook %d (%s) could not be reached for the %r message: %s",
                number, webhook.format, note.event, type(exc).__name__,
            )  # fmt: skip
            continue
        if response.is_success:
            delivered += 1
        else:
            log.warning(
                "notify: webhook %d (%s) answered %d to the %r message",
                number, webhook.format, response.status_code, note.event,
            )  # fmt: skip
    return delivered


def client() -> httpx.AsyncClient:
    """The notifier's client: short timeouts (a webhook never holds the run's end up for
    long); redirects are not followed (httpx's default)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT, connect=5.0))


class UrlMask(logging.Filter):
    """Masks the webhooks' URLs in the records of httpx's own logger, which logs every
    request's URL at INFO: installed on it while the notifier's client is open."""

    def __init__(self, webhooks: Sequence[Webhook]) -> None:
        super().__init__()
        self._urls = {w.url.reveal(): w.shown for w in webhooks}

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._mask(a) for a in record.args)
        record.msg = self._mask(record.msg)
        return True

    def _mask(self, value: Any) -> Any:
        text = str(value)
        hidden = [url for url in self._urls if url in text]
        for url in hidden:
            text = text.replace(url, self._urls[url])
        return text if hidden else value

    def install(self) -> None:
        logging.getLogger("httpx").addFilter(self)

    def remove(self) -> None:
        logging.getLogger("httpx").removeFilter(self)
