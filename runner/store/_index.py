"""The index of a results file, key -> the status that counts, in ~25 bytes a key.

A dict of a million 20-character keys takes about 110 MB (a str object and a dict slot
each), which made the index the largest thing in a long run. The keys spacerun makes
are 20 lowercase hex digits (`runner.inputs`), uniformly spread: they are kept in 65,536
buckets by their first four digits, each bucket a `bytearray` of fixed-width entries
`<last 16 digits><status letter>`. The status letters are not hex digits, so a search for
16 digits can only match at the start of an entry: a lookup is one `bytearray.find` over
a bucket of ~15 entries (at a million keys). Any other key goes to a plain dict.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, MutableMapping

from ._record import RecordStatus

__all__ = ["KeyIndex", "decode_key"]

_KEY = re.compile(r"[0-9a-f]{20}")
_KEY_BYTES = re.compile(rb"[0-9a-f]{20}")
_PREFIX = 4
_SUFFIX = 16
_ENTRY = _SUFFIX + 1
_LETTER = {
    RecordStatus.OK: ord("O"),
    RecordStatus.ERROR: ord("E"),
    RecordStatus.CANCELLED: ord("C"),
    RecordStatus.TIMEOUT: ord("T"),
}
_STATUS = {letter: status for status, letter in _LETTER.items()}
_LETTER_OF_VALUE = {status.value.encode(): bytes([_LETTER[status]]) for status in RecordStatus}


def decode_key(key: bytes) -> str:
    """A key as read from the file (a key with a lone surrogate, written escaped, comes
    back from `json.loads` as one: it survives the round trip)."""
    return key.decode("utf-8", "surrogatepass")


class KeyIndex(MutableMapping[str, RecordStatus]):
    """key -> `RecordStatus`, compact for spacerun's keys; counts per status kept live."""

    __slots__ = ("_buckets", "_counts", "_other")

    def __init__(self) -> None:
        self._buckets: dict[int, bytearray] = {}
        self._other: dict[str, RecordStatus] = {}
        self._counts: Counter[RecordStatus] = Counter()

    @property
    def counts(self) -> Counter[RecordStatus]:
        """Keys per status (read-only use)."""
        return self._counts

    def get(self, key: str, default: RecordStatus | None = None) -> RecordStatus | None:  # type: ignore[override]
        if _KEY.fullmatch(key) is None:
            return self._other.get(key, default)
        bucket = self._buckets.get(int(key[:_PREFIX], 16))
        if bucket is None:
            return default
        at = bucket.find(key[_PREFIX:].encode())
        return default if at < 0 else _STATUS[bucket[at + _SUFFIX]]

    def __getitem__(self, key: str) -> RecordStatus:
        status = self.get(key)
        if status is None:
            raise KeyError(key)
        return status

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __setitem__(self, key: str, status: RecordStatus) -> None:
        if _KEY.fullmatch(key) is None:
            previous = self._other.get(key)
            self._other[key] = status
        else:
            previous = self._put(int(key[:_PREFIX], 16), key[_PREFIX:].encode(), _LETTER[status])
        if previous is not None:
            self._counts[previous] -= 1
        self._counts[status] += 1

    def __delitem__(self, key: str) -> None:
        raise TypeError("a results index only grows")

    def __len__(self) -> int:
        return self._counts.total()

    def __iter__(self) -> Iterator[str]:
        yield from self._other
        for prefix, bucket in self._buckets.items():
            head = f"{prefix:04x}"
            for at in range(0, len(bucket), _ENTRY):
                yield head + bucket[at : at + _SUFFIX].decode()

    def items(self) -> Iterator[tuple[str, RecordStatus]]:  # type: ignore[override]
        yield from self._other.items()
        for prefix, bucket in self._buckets.items():
            head = f"{prefix:04x}"
            for at in range(0, len(bucket), _ENTRY):
                yield head + bucket[at : at + _SUFFIX].decode(), _STATUS[bucket[at + _SUFFIX]]

    def values(self) -> Iterator[RecordStatus]:  # type: ignore[override]
        for status, count in self._counts.items():
            for _ in range(count):
                yield status

    def update_from_bytes(self, keys: Iterable[bytes], statuses: Iterable[bytes]) -> None:
        """Set each key (bytes as read from the file) to its status (`b"ok"`, ...), in order:
        the bulk path of a scan, which never decodes a key of ours."""
        letters = _LETTER_OF_VALUE
        counts = self._counts
        for key, value in zip(keys, statuses, strict=True):
            status = _STATUS[letters[value][0]]
            if _KEY_BYTES.fullmatch(key) is None:
                text = decode_key(key)
                previous = self._other.get(text)
                self._other[text] = status
            else:
                previous = self._put(int(key[:_PREFIX], 16), key[_PREFIX:], letters[value][0])
            if previous is not None:
                counts[previous] -= 1
            counts[status] += 1

    def add_new(self, key: bytes, status: RecordStatus) -> bool:
        """Set `key` (bytes as read from the file) to `status` unless it is in the index
        already; whether it was new."""
        if _KEY_BYTES.fullmatch(key) is None:
            text = decode_key(key)
            if text in self._other:
                return False
            self._other[text] = status
        else:
            bucket = self._buckets.get(int(key[:_PREFIX], 16))
            if bucket is not None and bucket.find(key[_PREFIX:]) >= 0:
                return False
            self._put(int(key[:_PREFIX], 16), key[_PREFIX:], _LETTER[status])
        self._counts[status] += 1
        return True

    def _put(self, prefix: int, suffix: bytes, letter: int) -> RecordStatus | None:
        bucket = self._buckets.get(prefix)
        if bucket is None:
            self._buckets[prefix] = bytearray(suffix + bytes((letter,)))
            return None
        at = bucket.find(suffix)
        if at < 0:
            bucket += suffix
            bucket.append(letter)
            return None
        previous = _STATUS[bucket[at + _SUFFIX]]
        bucket[at + _SUFFIX] = letter
        return previous
