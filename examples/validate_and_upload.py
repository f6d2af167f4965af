"""Validate a dataset, upload it, and hand out a single-use download link.

    python examples/validate_and_upload.py data/support_chat.jsonl --name support-chat

Settings come from the environment (see the README's configuration reference): ``SUPABASE_URL``,
``SUPABASE_ANON_KEY`` and a signed-in user's ``LORA_PIPELINE_ACCESS_TOKEN`` (row-level security applies), or
``SUPABASE_SERVICE_ROLE_KEY`` on a server. Exits 1 when the file is invalid: nothing is uploaded then.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from lora_pipeline import DatasetValidationError, LoraPipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="validate and upload a training dataset")
    parser.add_argument("path", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--max-seq-len", type=int, default=None, help="flag examples longer than this")
    args = parser.parse_args(argv)
    console = Console()

    lp = LoraPipeline.from_env()
    report = lp.datasets.validate(args.path, max_seq_len=args.max_seq_len)
    console.print(report)  # findings with line, JSON path, code and how to fix each
    try:
        dataset = lp.datasets.upload(args.path, name=args.name)  # validates again; resumable above 6 MB
    except DatasetValidationError as error:
        console.print(f"[red]not uploaded:[/red] {error}")
        return 1
    console.print(f"uploaded {dataset.name} as {dataset.id} ({dataset.size_bytes:,} bytes)")

    # A pod (or a colleague) downloads with this once; only its hash is stored.
    link = lp.tokens.issue(dataset.id, ttl=timedelta(minutes=30))
    if link.url:  # built from NEXT_PUBLIC_APP_URL / LORA_PIPELINE_APP_URL, where the download app is served
        console.print(f"single-use download link, valid until {link.expires_at:%H:%M} UTC: {link.url}")
    else:
        console.print(
            f"single-use download token, valid until {link.expires_at:%H:%M} UTC (set NEXT_PUBLIC_APP_URL for a link)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
