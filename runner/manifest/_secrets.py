"""Which `${VAR}` values are secrets, and the `Redactor` that masks them in what is written.

A variable is secret when its name says so (`is_secret_name`) or the manifest lists it in
`secrets:`, unless the manifest lists it in `not_secret:`. Only values taken from the
environment count: a `${VAR:-default}` default is written in the manifest in clear anyway.

The run keeps the real values (keys are computed from them, so resume finds done rows);
everything it writes or prints goes through `Redactor.mask`, which writes `${NAME}` where a
secret's value was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MIN_MASKED_LENGTH", "Redactor", "is_secret_name", "variables_in"]

#: A secret shorter than this is masked only where a whole value equals it: replacing
#: every "abc" inside outputs, error messages and logs would wreck them. Real keys and
#: tokens are far longer.
MIN_MASKED_LENGTH = 4

#: The last word of the name (words split at `_`), upper-cased: `OPENAI_API_KEY`,
#: `GITHUB_TOKEN`, `CLIENT_SECRET`, `DEEPL_APIKEY`.
_SECRET_LAST_WORDS = frozenset({"KEY", "APIKEY", "TOKEN", "SECRET"})
#: Anywhere in the upper-cased name: `DB_PASSWORD`, `SMTP_PASSWD`, `GPG_PASSPHRASE`.
_SECRET_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE")
#: Any word so, or starting so: `BASIC_AUTH`, `AUTH_HEADER`, `PROXY_AUTHORIZATION` (not
#: `AUTHOR`).
_SECRET_WORDS = frozenset({"AUTH", "AUTHN", "AUTHZ"})
_SECRET_WORD_STARTS = ("AUTHORIZ", "AUTHENTIC")

_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


def is_secret_name(name: str) -> bool:
    """Whether a variable's name alone makes it secret (see the module's rule)."""
    upper = name.upper()
    words = [w for w in upper.split("_") if w]
    if not words:
        return False
    return (
        words[-1] in _SECRET_LAST_WORDS
        or any(part in upper for part in _SECRET_PARTS)
        or any(w in _SECRET_WORDS or w.startswith(_SECRET_WORD_STARTS) for w in words)
    )


def variables_in(template: str) -> list[str]:
    """The names of the `${VAR}` references in `template`, in order (`$$` is no reference)."""
    return [m.group(1) for m in _REFERENCE.finditer(template) if m.group(1)]


@dataclass(frozen=True, slots=True)
class Redactor:
    """Masks the values of secret variables: each becomes `${NAME}`.

    `secrets` maps a variable's name to its value. Longer values are masked first, so a
    secret that contains another is masked whole.
    """

    secrets: Mapping[str, str] = field(default_factory=dict)
    _order: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _whole: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kept = {name: value for name, value in self.secrets.items() if value}
        ordered = sorted(kept.items(), key=lambda item: -len(item[1]))
        object.__setattr__(
            self,
            "_order",
            tuple(
                (value, placeholder(name))
                for name, value in ordered
                if len(value) >= MIN_MASKED_LENGTH
            ),
        )
        object.__setattr__(self, "_whole", {value: placeholder(name) for name, value in ordered})

    def __repr__(self) -> str:  # never the values
        return f"Redactor(names={sorted(self.secrets)!r})"

    def __bool__(self) -> bool:
        return bool(self._whole)

    @property
    def names(self) -> list[str]:
        return sorted(self.secrets)

    @property
    def short(self) -> list[str]:
        """Secrets too short to be searched for in text (masked only as whole values)."""
        return sorted(n for n, v in self.secrets.items() if v and len(v) < MIN_MASKED_LENGTH)

    def mask(self, text: str) -> str:
        """`text` with every secret's value replaced by `${NAME}`."""
        if not self._whole:
            return text
        whole = self._whole.get(text)
        if whole is not None:
            return whole
        for value, shown in self._order:
            if value in text:
                text = text.replace(value, shown)
        return text

    def mask_value(self, value: Any) -> Any:
        """`value` with every string in it masked (through lists, tuples and dicts)."""
        if not self._whole:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self.mask_value(k): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.mask_value(v) for v in value)
        return value

    def mask_bytes(self, data: bytes) -> bytes:
        """`data` (UTF-8 text, such as a log file) with every secret's value masked."""
        for value, shown in self._order:
            encoded = value.encode("utf-8")
            if encoded in data:
                data = data.replace(encoded, shown.encode("utf-8"))
        return data


def placeholder(name: str) -> str:
    return "${" + name + "}"


def secret_names(
    used: Iterable[str], *, listed: Iterable[str], not_secret: Iterable[str]
) -> set[str]:
    """Of the variables `used`, those that are secret: by name or `listed`, not `not_secret`."""
    listed, not_secret = set(listed), set(not_secret)
    return {
        name for name in used if (is_secret_name(name) or name in listed) and name not in not_secret
    }
