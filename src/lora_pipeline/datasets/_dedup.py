"""Exact-duplicate detection in about 16–32 bytes per example, never storing the examples themselves.

A Python ``set[int]`` costs ~70 bytes per entry and a ``dict[int, int]`` (hash → first line) over 100, which at a
million examples is most of the validator's memory budget. ``SeenHashes`` keeps the same information in two flat
arrays: 64-bit keys (``array('Q')``) and 32-bit first-seen lines (``array('I')``), with open addressing and
linear probing, kept at most 3/4 full.

Keys are the built-in ``hash`` of a canonical, order-insensitive form of the example's training content (the
record minus ``id`` and ``metadata``). Python's string hash is 64-bit SipHash, keyed per process: collisions have
probability ~n²/2⁶⁵ (negligible at 10⁷ examples), and they cannot be planted by whoever wrote the file.
"""

from __future__ import annotations

import json
from array import array
from typing import Any

NOT_TRAINED_ON = frozenset({"id", "metadata"})
DEFAULT_MAX_ENTRIES = 3_000_000
"""Fits a 2²²-slot table (48 MiB): with the 24 MiB it grows from, peak memory stays well under 150 MB."""
_MASK64 = (1 << 64) - 1
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def training_key(record: dict[str, Any]) -> int:
    """A 64-bit key equal for examples with the same training content, whatever their key order."""
    content: object
    try:
        content = frozenset([(k, _freeze(v)) for k, v in record.items() if k not in NOT_TRAINED_ON])
    except TypeError:  # lists inside turns (content parts, tool calls): canonical JSON, slower but exact
        content = _CANONICAL.encode({k: v for k, v in record.items() if k not in NOT_TRAINED_ON})
    return (hash(content) & _MASK64) or 1  # 0 marks an empty slot


def _freeze(value: Any) -> Any:
    # Two levels cover every format (a list of flat turn objects); deeper lists raise TypeError on hashing.
    if type(value) is list:
        return tuple([frozenset(item.items()) if type(item) is dict else item for item in value])
    if type(value) is dict:
        return frozenset(value.items())
    return value


class SeenHashes:
    """A set of non-zero 64-bit keys, each with the line it was first seen on.

    Stops growing at ``max_entries`` (``full`` turns true); keys already held are still recognised, so memory is
    bounded whatever the file size.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, initial_capacity: int = 1 << 14) -> None:
        self.max_entries = max_entries
        self.size = 0
        self.full = False
        self._allocate(initial_capacity)

    def _allocate(self, capacity: int) -> None:
        # Repetition allocates the array once; array("Q", bytes(...)) would hold a same-sized bytes copy too.
        self._keys = array("Q", [0]) * capacity
        self._lines = array("I", [0]) * capacity
        self._mask = capacity - 1
        self._grow_at = capacity * 3 // 4

    @property
    def nbytes(self) -> int:
        """Memory held by the two arrays."""
        return len(self._keys) * self._keys.itemsize + len(self._lines) * self._lines.itemsize

    def add(self, key: int, line: int) -> int:
        """The line ``key`` was first seen on, or 0 after adding it (or when full and not held)."""
        keys, mask = self._keys, self._mask
        slot = key & mask
        while True:
            held = keys[slot]
            if held == key:
                return self._lines[slot]
            if not held:
                break
            slot = (slot + 1) & mask
        if self.size >= self.max_entries:
            self.full = True
            return 0
        keys[slot] = key
        self._lines[slot] = line
        self.size += 1
        if self.size > self._grow_at:
            self._grow()
        return 0

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        self._allocate(len(old_keys) * 2)
        keys, lines, mask = self._keys, self._lines, self._mask
        for key, line in zip(old_keys, old_lines, strict=True):
            if key:
                slot = key & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                lines[slot] = line


__all__ = ["DEFAULT_MAX_ENTRIES", "NOT_TRAINED_ON", "SeenHashes", "training_key"]
