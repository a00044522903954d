"""The index of a results file, key -> the status that counts, in ~11 bytes a key.

A dict of a million 20-character keys takes about 110 MB (a str object and a dict slot
each), and building it from a scan costs a Python call per line. The keys spacerun
makes are 20 lowercase hex digits (`runner.inputs`): here they are numpy arrays, the
first 16 digits as a `uint64`, the last 4 as a `uint16`, and a status code, sorted by
the `uint64`. A scan builds them with one sort (`KeyIndex.of_sorted_arrays`); a bulk lookup
(`codes_of`, the resume plan's "which cached keys are done") is one `searchsorted`.

Keys recorded while a run goes on land in a small dict first, merged into the arrays
every `_MERGE_AT` keys, so appends stay O(1) and memory stays ~11 bytes a key. Any key
that is not 20 hex digits lives in a plain dict.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator, MutableMapping

import numpy as np
from numpy.typing import NDArray

from ._record import RecordStatus

__all__ = ["CODES", "KEY_LENGTH", "MISSING", "KeyIndex", "decode_key", "split_hex_keys"]

#: The status codes of the arrays: `CODES[code]` is the status; `MISSING` is no record.
CODES: tuple[RecordStatus, ...] = tuple(RecordStatus)
MISSING = -1
KEY_LENGTH = 20

_CODE = {status: code for code, status in enumerate(CODES)}
_OK = _CODE[RecordStatus.OK]
logger = logging.getLogger("runner.results")
_KEY = re.compile(r"[0-9a-f]{20}")
_HIGH = 16  # hex digits in the uint64
_MERGE_AT = 32768
_NIBBLE = np.full(256, 16, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)

Codes = NDArray[np.int8]


def decode_key(key: bytes) -> str:
    """A key as read from the file (a key with a lone surrogate, written escaped, comes
    back from `json.loads` as one: it survives the round trip)."""
    return key.decode("utf-8", "surrogatepass")


def split_hex_keys(
    chars: NDArray[np.uint8],
) -> tuple[NDArray[np.uint64], NDArray[np.uint16], NDArray[np.bool_]]:
    """Keys given as an (n, 20) array of ASCII bytes -> their high and low parts, and
    whether each is 20 lowercase hex digits (the parts of the others are meaningless)."""
    nibbles = _NIBBLE[chars]
    valid: NDArray[np.bool_] = np.asarray((nibbles < 16).all(axis=1))
    high = np.zeros(len(chars), dtype=np.uint64)
    for column in range(_HIGH):
        high = (high << np.uint64(4)) | nibbles[:, column]
    low = np.zeros(len(chars), dtype=np.uint16)
    for column in range(_HIGH, KEY_LENGTH):
        low = (low << np.uint16(4)) | nibbles[:, column]
    return high, low, valid


def _split(key: str) -> tuple[np.uint64, np.uint16]:
    return np.uint64(int(key[:_HIGH], 16)), np.uint16(int(key[_HIGH:], 16))


class KeyIndex(MutableMapping[str, RecordStatus]):
    """key -> `RecordStatus`, compact for spacerun's keys; counts per status kept live."""

    __slots__ = ("_codes", "_counts", "_high", "_low", "_other", "_recent")

    def __init__(self) -> None:
        self._high: NDArray[np.uint64] = np.zeros(0, dtype=np.uint64)
        self._low: NDArray[np.uint16] = np.zeros(0, dtype=np.uint16)
        self._codes: Codes = np.zeros(0, dtype=np.int8)
        self._recent: dict[str, RecordStatus] = {}  # hex keys not yet in the arrays
        self._other: dict[str, RecordStatus] = {}
        self._counts: Counter[RecordStatus] = Counter()

    @classmethod
    def of_sorted_arrays(
        cls,
        high: NDArray[np.uint64],
        low: NDArray[np.uint16],
        codes: Codes,
        other: dict[str, RecordStatus],
    ) -> KeyIndex:
        """The index of distinct hex keys sorted by their high part (as a scan sorts them,
        or `arrays()` returned them), and of `other` keys."""
        if len(high) != len(low) or len(high) != len(codes):
            raise ValueError("the arrays of an index must have one length")
        if len(high) and (
            np.any(high[1:] < high[:-1]) or codes.min() < 0 or codes.max() >= len(CODES)
        ):
            raise ValueError("not the arrays of an index")
        index = cls()
        index._high, index._low, index._codes, index._other = high, low, codes, dict(other)
        index._recount()
        return index

    def arrays(
        self,
    ) -> tuple[NDArray[np.uint64], NDArray[np.uint16], Codes, dict[str, RecordStatus]]:
        """The hex keys' parts and codes, sorted by the high part, and the other keys."""
        self._merge()
        return self._high, self._low, self._codes, self._other

    def update_from(self, later: KeyIndex) -> None:
        """Apply the index of records written after this index's (the statuses that count
        there), as `ResultsStore` would have: a key ok here stays ok."""
        later._merge()
        self._merge()
        at = self._positions(later._high, later._low)
        found = at >= 0
        here = np.where(found, self._codes[np.where(found, at, 0)], MISSING)
        if extra := int(np.count_nonzero((here == _OK) & (later._codes == _OK))):
            logger.warning(
                "%d keys ok before have another ok record later; the first counts", extra
            )
        change = found & (here != _OK)
        self._codes[at[change]] = later._codes[change]
        new = ~found
        self._insert(later._high[new], later._low[new], later._codes[new])
        for key, status in later._other.items():
            if self._other.get(key) is not RecordStatus.OK:
                self._other[key] = status
        self._recount()

    @property
    def counts(self) -> Counter[RecordStatus]:
        """Keys per status (read-only use)."""
        return self._counts

    def get(self, key: str, default: RecordStatus | None = None) -> RecordStatus | None:  # type: ignore[override]
        status = self._recent.get(key)
        if status is not None:
            return status
        if _KEY.fullmatch(key) is None:
            return self._other.get(key, default)
        at = self._find(*_split(key))
        return default if at < 0 else CODES[self._codes[at]]

    def codes_of(
        self, high: NDArray[np.uint64], low: NDArray[np.uint16], valid: NDArray[np.bool_]
    ) -> Codes:
        """The status code (`CODES`, or `MISSING`) of each key given by its parts, as
        `split_hex_keys` returns them; a key not `valid` is looked up by the caller."""
        self._merge()
        at = self._positions(high, low)
        found = valid & (at >= 0)
        codes = np.full(len(high), MISSING, dtype=np.int8)
        codes[found] = self._codes[at[found]]
        return codes

    def codes_of_chars(self, chars: NDArray[np.uint8]) -> Codes:
        """The status code (`CODES`, or `MISSING`) of each key of an (n, 20) array of
        their ASCII bytes."""
        high, low, valid = split_hex_keys(chars)
        codes = self.codes_of(high, low, valid)
        for at in np.flatnonzero(~valid):  # not one of our keys: the dict has it, if any
            status = self._other.get(chars[at].tobytes().decode("utf-8", "replace"))
            codes[at] = MISSING if status is None else _CODE[status]
        return codes

    def __getitem__(self, key: str) -> RecordStatus:
        status = self.get(key)
        if status is None:
            raise KeyError(key)
        return status

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __setitem__(self, key: str, status: RecordStatus) -> None:
        status = RecordStatus(status)
        previous = self._recent.get(key)
        if previous is not None:
            self._recent[key] = status
        elif _KEY.fullmatch(key) is None:
            previous = self._other.get(key)
            self._other[key] = status
        else:
            at = self._find(*_split(key))
            if at >= 0:
                previous = CODES[self._codes[at]]
                self._codes[at] = _CODE[status]
            else:
                self._recent[key] = status
                if len(self._recent) >= _MERGE_AT:
                    self._merge()
        if previous is not None:
            self._counts[previous] -= 1
        self._counts[status] += 1

    def __delitem__(self, key: str) -> None:
        raise TypeError("a results index only grows")

    def __len__(self) -> int:
        return self._counts.total()

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.items())

    def items(self) -> Iterator[tuple[str, RecordStatus]]:  # type: ignore[override]
        yield from self._other.items()
        yield from list(self._recent.items())
        for high, low, code in zip(
            self._high.tolist(), self._low.tolist(), self._codes.tolist(), strict=True
        ):
            yield f"{high:016x}{low:04x}", CODES[code]

    def values(self) -> Iterator[RecordStatus]:  # type: ignore[override]
        for status, count in self._counts.items():
            for _ in range(count):
                yield status

    def _recount(self) -> None:
        found = np.bincount(self._codes.astype(np.intp), minlength=len(CODES))
        self._counts = Counter({CODES[code]: int(n) for code, n in enumerate(found) if n})
        self._counts.update(self._recent.values())
        self._counts.update(self._other.values())

    def _positions(self, high: NDArray[np.uint64], low: NDArray[np.uint16]) -> NDArray[np.intp]:
        """The position of each key in the arrays, or -1."""
        positions = np.full(len(high), -1, dtype=np.intp)
        if not len(self._high) or not len(high):
            return positions
        # Sorted queries make the search walk the arrays in order: ~6x faster at 10^6.
        order = np.argsort(high)
        at = np.searchsorted(self._high, high[order])
        inside = at < len(self._high)
        at = np.where(inside, at, 0)
        hit = inside & (self._high[at] == high[order])
        exact = hit & (self._low[at] == low[order])
        positions[order[exact]] = at[exact]
        # Two keys sharing their first 16 digits (one in ~10^13 pairs): look further.
        for i in order[hit & ~exact]:
            positions[i] = self._find(high[i], low[i])
        return positions

    def _find(self, high: np.uint64, low: np.uint16) -> int:
        """The position of a key in the arrays, or -1."""
        at = int(np.searchsorted(self._high, high))
        while at < len(self._high) and self._high[at] == high:
            if self._low[at] == low:
                return at
            at += 1
        return -1

    def _merge(self) -> None:
        """Move the recent keys (none of them in the arrays) into the arrays."""
        if not self._recent:
            return
        chars = np.frombuffer("".join(self._recent).encode(), dtype=np.uint8)
        high, low, _ = split_hex_keys(chars.reshape(-1, KEY_LENGTH))
        codes = np.fromiter((_CODE[s] for s in self._recent.values()), np.int8, len(high))
        self._insert(high, low, codes)
        self._recent.clear()

    def _insert(self, high: NDArray[np.uint64], low: NDArray[np.uint16], codes: Codes) -> None:
        """Add keys that are not in the arrays."""
        order = np.argsort(high, kind="stable")
        high, low, codes = high[order], low[order], codes[order]
        # Equal high parts may sit in any order: `_find` walks their run.
        at = np.searchsorted(self._high, high)
        self._high = np.insert(self._high, at, high)
        self._low = np.insert(self._low, at, low)
        self._codes = np.insert(self._codes, at, codes)
