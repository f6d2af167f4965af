"""HTTP/1.1 keep-alive: supabase-py keeps idle connections for 5 s, so the gateway must keep them longer
(research/supabase-stack.md §0.1, pitfall §8 #6; checklist §9 "Gateway / transport")."""

from __future__ import annotations

import time
from typing import Any

import httpx


def _local_port(response: httpx.Response) -> int:
    """The client-side port of the connection that carried ``response``."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_sequential_requests_share_one_connection_that_survives_a_6_second_idle(target: Any) -> None:
    headers = {"apikey": target.anon_key}
    paths = ["/auth/v1/health", "/auth/v1/settings", "/rest/v1/", "/auth/v1/.well-known/jwks.json"]
    limits = httpx.Limits(max_connections=1, keepalive_expiry=60)
    with httpx.Client(base_url=target.url, headers=headers, limits=limits, timeout=10) as client:
        ports = set()
        for number in range(50):
            response = client.get(paths[number % len(paths)])
            assert response.status_code == 200, response.text
            assert response.http_version == "HTTP/1.1"
            ports.add(_local_port(response))
        assert len(ports) == 1
        time.sleep(6)
        after_idle = client.get("/auth/v1/health")
        assert after_idle.status_code == 200
        assert _local_port(after_idle) in ports, "the gateway closed a connection idle for 6 s"
