"""Count the history records in a wandb offline run file (``run-*.wandb``), the landed count of wandb's side.

The file is a LevelDB-style log: a 7-byte header (``:W&B``, magic ``0xBEE1``, version 0), then 32 KiB blocks
of chunks, each ``crc32c (4) | length (2, little-endian) | type (1)`` and its payload; a record is one FULL
chunk or FIRST, MIDDLE..., LAST. A record's payload is a ``wandb_internal_pb2.Record``; each ``log()`` call
that commits a step is one ``history`` record. Checksums are not verified (wandb wrote the file just now).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

HEADER = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[bytes]:
    """The payload of every record in the file, in order."""
    data = path.read_bytes()
    if not data.startswith(HEADER):
        raise ValueError(f"{path} is not a wandb run file (header {data[:7]!r})")
    position, pending = len(HEADER), b""
    while position + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < CHUNK_HEADER:  # the block's tail is padding
            position += left_in_block
            continue
        _, length, kind = struct.unpack_from("<IHB", data, position)
        payload = data[position + CHUNK_HEADER : position + CHUNK_HEADER + length]
        position += CHUNK_HEADER + length
        if kind == 0 and length == 0:  # zero padding at the end
            continue
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pending = payload
        elif kind == MIDDLE:
            pending += payload
        elif kind == LAST:
            yield pending + payload
            pending = b""


def count_history(path: Path) -> int:
    """How many ``history`` records (logged steps) the run file holds."""
    from wandb.proto import wandb_internal_pb2  # type: ignore[import-not-found,unused-ignore]

    count = 0
    for payload in records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            count += 1
    return count


if __name__ == "__main__":
    import sys

    print(count_history(Path(sys.argv[1])))
