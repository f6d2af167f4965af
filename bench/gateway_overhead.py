"""Benchmark: what the ``/rest/v1`` gateway adds on top of the SQL it runs.

Starts an embedded stack, then drives the gateway app in process (``httpx.ASGITransport`` against
``create_app(config)``, so no sockets or uvicorn are measured) and compares, in the same run:

- a trivial read ``GET /rest/v1/<table>?select=id&limit=1`` as anon, against
  - the bare ``SELECT id FROM <table> LIMIT 1`` on one open psycopg connection, and
  - the same work as the gateway does it in SQL: a pooled connection, ``BEGIN READ ONLY``, the ``set_config``
    of role/claims/request settings, PostgREST's CTE-wrapped statement, ``COMMIT``;
- the same read over real HTTP to the stack's gateway process (uvicorn, keep-alive), against the bare select;
- the pod's metrics ingest ``POST /rest/v1/rpc/ingest_metrics`` with 1000 points, against
  ``select public.ingest_metrics(...)`` with the same JSON in a transaction.

    python -m bench.gateway_overhead                  # 400 reads, 30 ingests
    python -m bench.gateway_overhead --reads 1000 --ingests 50
"""

from __future__ import annotations

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

from ._report import Figure, Result
from ._suite import run_standalone, standalone

NAME = "gateway_overhead"
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
            httpx.AsyncClient(base_url=stack.url, headers=headers) as http,
        ):

            async def gateway_read() -> None:
                response = await client.get(f"/rest/v1/{TABLE}", params={"select": "id", "limit": "1"})
                assert response.status_code == 200, response.text

            async def http_read() -> None:
                response = await http.get(f"/rest/v1/{TABLE}", params={"select": "id", "limit": "1"})
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
                    "http_read": http_read,
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


def measure(reads: int, ingests: int) -> dict[str, Any]:
    with LocalSupabase.start() as stack:
        job, token = _prepare(stack)
        samples = asyncio.run(_measure(stack, job, token, reads, ingests))
    figures: dict[str, Any] = {name: _summary(values) for name, values in samples.items()}
    figures["samples"] = {"reads": reads, "ingests": ingests}
    return figures


def run(*, quick: bool = False, reads: int | None = None, ingests: int | None = None) -> Result:
    measured = measure(reads or (100 if quick else 400), ingests or (10 if quick else 30))
    median = {name: value["median_ms"] for name, value in measured.items() if name != "samples"}
    bare, same_sql = median["direct_bare_select"], median["direct_postgrest_transaction"]
    figures = [
        Figure("GET /rest/v1 one row as anon, in process (ASGI)", median["gateway_read"], "ms", bare, "bare SELECT"),
        Figure(
            "GET /rest/v1 one row as anon, in process (ASGI)",
            median["gateway_read"],
            "ms",
            same_sql,
            "its SQL: pool, role, claims, CTE",
        ),
        Figure(
            "GET /rest/v1 one row as anon, over HTTP (gateway process)", median["http_read"], "ms", bare, "bare SELECT"
        ),
        Figure(
            "POST rpc/ingest_metrics 1,000 points, in process (ASGI)",
            median["gateway_ingest_1000_points"],
            "ms",
            median["direct_ingest_1000_points"],
            "same call in SQL",
        ),
    ]
    return Result(figures, measured)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def arguments(parser: Any) -> None:
        parser.add_argument("--reads", type=int, help="reads timed per variant (default 400)")
        parser.add_argument("--ingests", type=int, help="1,000-point ingests timed per variant (default 30)")

    args = standalone(NAME, argv, arguments)
    return run_standalone(NAME, lambda: run(quick=args.quick, reads=args.reads, ingests=args.ingests), args)


if __name__ == "__main__":
    main()
