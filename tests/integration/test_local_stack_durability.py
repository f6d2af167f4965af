"""``LocalSupabase.start(durable=...)``: which PostgreSQL durability a stack runs with, read back from the server.

A temporary stack defaults to the fast test settings (its data dies with it); a stack with ``data_dir`` defaults
to PostgreSQL's durability; ``durable`` overrides either (the benchmarks' headline figures rely on it)."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from lora_pipeline.local_supabase import LocalSupabase

SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")


def _settings(stack: LocalSupabase) -> dict[str, str]:
    with stack.connect() as conn:
        return {name: str(conn.execute(f"show {name}").fetchone()[0]) for name in SETTINGS}  # type: ignore[index]


@pytest.mark.parametrize(("durable", "expected"), [(None, "off"), (True, "on"), (False, "off")])
def test_temporary_stack_durability(durable: bool | None, expected: str) -> None:
    with LocalSupabase.start(gateway="thread", durable=durable) as stack:
        assert _settings(stack) == dict.fromkeys(SETTINGS, expected)


def test_a_data_dir_stack_is_durable_by_default_and_keeps_the_choice_across_a_restart() -> None:
    data_dir = tempfile.mkdtemp(prefix="lora-durable-")  # under /tmp: a root-run cluster's user can enter it
    try:
        with LocalSupabase.start(data_dir=data_dir, gateway="thread") as stack:
            assert _settings(stack) == dict.fromkeys(SETTINGS, "on")
            stack.postgres.restart()
            assert _settings(stack) == dict.fromkeys(SETTINGS, "on")
        with LocalSupabase.start(data_dir=data_dir, gateway="thread", durable=False) as stack:
            assert _settings(stack) == dict.fromkeys(SETTINGS, "off")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
