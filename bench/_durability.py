"""Which durability a benchmark's stack runs with, read back from PostgreSQL rather than assumed.

The headline ingest figures run on ``LocalSupabase.start(durable=True)`` (PostgreSQL's defaults: an
acknowledged row survives a crash), as a peer's PostgreSQL would; the fast test settings (``fsync``,
``synchronous_commit`` and ``full_page_writes`` off: a temporary stack's default) are a second, labelled row.
"""

from __future__ import annotations

import time
from typing import Any

SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")
LABELS = {True: "durable (fsync on, synchronous_commit on)", False: "fast test settings (fsync off)"}


def start_stack(durable: bool) -> Any:
    """A temporary stack with the durability asked for, checked against what the server reports."""
    from lora_pipeline.local_supabase import LocalSupabase

    stack = LocalSupabase.start(durable=durable)
    try:
        check(stack, durable)
    except BaseException:
        stack.stop()
        raise
    return stack


def settings(stack: Any) -> dict[str, str]:
    """The server's values of the three settings that decide whether an acknowledged commit is on disk."""
    with stack.connect() as conn:
        return {name: str(conn.execute(f"show {name}").fetchone()[0]) for name in SETTINGS}  # type: ignore[index]


def check(stack: Any, durable: bool) -> dict[str, str]:
    """The settings, or ``RuntimeError`` when they are not the ones ``durable`` promises (figures would lie)."""
    found = settings(stack)
    wanted = "on" if durable else "off"
    wrong = {name: value for name, value in found.items() if value != wanted}
    if wrong:
        raise RuntimeError(f"stack started with durable={durable} but PostgreSQL reports {wrong}")
    return found


def switch(stack: Any, durable: bool) -> dict[str, str]:
    """Turn a stack started with ``durable=True`` to the fast test settings (``durable=False``) or back, in place.

    ``ALTER SYSTEM`` and a reload: all three settings take effect in every session, the gateway's pooled ones
    included, without a restart. (A stack started with ``durable=False`` has them on its command line, which
    ``ALTER SYSTEM`` cannot override: hence only from a durable start.) Saves a second 1,000,000-row fill.
    """
    with stack.connect() as conn:
        for name in SETTINGS:
            conn.execute(f"alter system reset {name}" if durable else f"alter system set {name} = off")
        conn.execute("select pg_reload_conf()")
    for _ in range(100):
        try:
            return check(stack, durable)
        except RuntimeError:
            time.sleep(0.05)
    return check(stack, durable)
