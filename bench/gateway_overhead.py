"""Benchmark: what the ``/rest/v1`` gateway adds on top of the SQL it runs.

Starts an embedded stack, then drives the gateway app in process (``httpx.ASGITransport`` against
``create_app(config)``, so no sockets or uvicorn are measured) and compares, in the same run:

- a trivial read ``GET /rest/v1/<table>?select=id&limit=1`` as anon, against
  - the bare ``SELECT id FROM <table> LIMIT 1`` on one open psycopg connection, and
  - the same work as the gateway does it in SQL: a pooled connection, ``BEGIN READ ONLY``, the ``set_config``
    of role/claims/request settings, PostgREST's CTE-wrapped statement, ``COMMIT``;
- the pod's metrics ingest ``POST /rest/v1/rpc/ingest_metrics`` with 1000 points, against
  ``select public.ingest_metrics(...)`` with the same JSON in a transaction.

    python -m bench.gateway_overhead                  # 400 reads, 30 ingests
    python -m bench.gateway_overhead --reads 1000 --ingests 50
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psycopg

from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.local_supabase.db import Database, RequestIdentity
from lora_pipeline.local_supabase.gateway import create_app

TABLE = "bench_gateway_items"
_READ_SQL = (
    f'WITH pgrst_source AS (SELECT "public"."{TABLE}"."id" FROM "public"."{TABLE}" LIMIT %s OFFSET %s) '
    "SELECT null::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, "
    "coalesce(json_agg(_postgrest_t), '[]')::text AS body, "
    "nullif(current_setting('response.headers', true), '') AS response_headers, "
    "nullif(current_setting('response.status', true), '') AS response_status "
    "FROM (SELECT * FROM pgrst_source) _postgrest_t"
)


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 3),
    }


async def _interleaved(
    calls: dict[str, Callable[[], Awaitable[Any]]], rounds: int, warmup: int = 20
) -> dict[str, list[float]]:
    """Time each call once per round, in turn, so that every variant sees the same machine load."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for index in range(warmup + rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            await call()
            if index >= warmup:
                samples[name].append(time.perf_counter() - started)
    return samples


def _prepare(stack: LocalSupabase) -> tuple[str, str]:
    """A 100-row table anyone may read, and a running job with a job token (for ingest)."""
    token = uuid.uuid4().hex
    with stack.connect() as conn:
        conn.execute(f"create table if not exists public.{TABLE} (id int primary key, note text)")
        conn.execute(
            f"insert into public.{TABLE} select g, 'n' || g from generate_series(1, 100) g on conflict do nothing"
        )
        user = conn.execute(
            "insert into auth.users (id, aud, role, email, created_at) values "
            "(gen_random_uuid(), 'authenticated', 'authenticated', 'bench@example.test', now()) "
            "returning id"
        ).fetchone()[0]  # type: ignore[index]
        dataset = conn.execute(
            "insert into public.datasets (user_id, name) values (%s, 'bench') returning id", (user,)
        ).fetchone()[0]  # type: ignore[index]
        job = conn.execute(
            "insert into public.training_jobs (user_id, dataset_id, base_model, status, job_token_hash, "
            "job_token_expires_at) values (%s, %s, 'tiny', 'running', %s, now() + interval '1 hour') returning id",
            (user, dataset, hashlib.sha256(token.encode()).hexdigest()),
        ).fetchone()[0]  # type: ignore[index]
    return str(job), token


async def _measure(stack: LocalSupabase, job: str, token: str, reads: int, ingests: int) -> dict[str, Any]:
    app = create_app(stack.config)
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"}
    points = json.dumps(_points())
    ingest_body = json.dumps({"job_id": job, "job_token": token, "points": _points()}).encode()
    identity = RequestIdentity("anon", {"role": "anon"}, "GET", f"/{TABLE}", {"apikey": stack.anon_key})
    db = Database(stack.authenticator_db_url, stack.db_url)
    conn = await psycopg.AsyncConnection.connect(stack.authenticator_db_url, autocommit=True)
    await conn.execute("set role anon")
    await db.open()
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=headers
            ) as client,
        ):

            async def gateway_read() -> None:
                response = await client.get(f"/rest/v1/{TABLE}", params={"select": "id", "limit": "1"})
                assert response.status_code == 200, response.text

            async def bare_select() -> None:
                await (await conn.execute(f"select id from public.{TABLE} limit 1")).fetchall()

            async def same_transaction() -> None:
                async with db.transaction(identity, read_only=True) as tx:
                    await (await tx.execute(_READ_SQL, [1, 0])).fetchone()

            async def gateway_ingest() -> None:
                response = await client.post(
                    "/rest/v1/rpc/ingest_metrics", content=ingest_body, headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 200, response.text

            async def direct_ingest() -> None:
                async with db.transaction(identity) as tx:
                    await tx.execute("select public.ingest_metrics(%s, %s, %s::jsonb)", [job, token, points])

            samples = await _interleaved(
                {
                    "gateway_read": gateway_read,
                    "direct_bare_select": bare_select,
                    "direct_postgrest_transaction": same_transaction,
                },
                reads,
            )
            samples |= await _interleaved(
                {"gateway_ingest_1000_points": gateway_ingest, "direct_ingest_1000_points": direct_ingest},
                ingests,
                warmup=3,
            )
            return samples
    finally:
        await conn.close()
        await db.close()


def _points() -> list[dict[str, Any]]:
    return [
        {"step": i, "epoch": i / 1000, "train_loss": 2.0 / (i + 1), "learning_rate": 1e-4, "tokens_per_second": 1234.5}
        for i in range(1000)
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print and return the figures (milliseconds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--ingests", type=int, default=30)
    args = parser.parse_args(argv)
    with LocalSupabase.start() as stack:
        job, token = _prepare(stack)
        samples = asyncio.run(_measure(stack, job, token, args.reads, args.ingests))
    figures: dict[str, Any] = {name: _summary(values) for name, values in samples.items()}
    figures["read_overhead_vs_bare_select_ms"] = round(
        figures["gateway_read"]["median_ms"] - figures["direct_bare_select"]["median_ms"], 3
    )
    figures["read_overhead_vs_same_transaction_ms"] = round(
        figures["gateway_read"]["median_ms"] - figures["direct_postgrest_transaction"]["median_ms"], 3
    )
    figures["ingest_overhead_ms"] = round(
        figures["gateway_ingest_1000_points"]["median_ms"] - figures["direct_ingest_1000_points"]["median_ms"], 3
    )
    figures["samples"] = {"reads": args.reads, "ingests": args.ingests}
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
