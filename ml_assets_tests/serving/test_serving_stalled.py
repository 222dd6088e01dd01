"""Stalled clients against a real server (docs/reliability.md, row R07): 300 connections that
send half a request head or half a body are dropped within the header/body timeouts, and
``/health`` keeps answering meanwhile."""

import socket
import time

import httpx

from ml_assets.serving.app import running_server
from ml_assets.serving.guard import LIMIT_CONCURRENCY, server_options
from ml_assets_tests.fixtures.serving_world import SPEC, world_copy

STALLED = 300
TIMEOUT_S = 1.0


def _closed_by_server(sock: socket.socket, until: float) -> bool:
    """True once the server closed the connection (EOF), reading any answer it sent first."""
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False


def test_R07_stalled_connections_are_dropped_while_health_answers(tmp_path):
    assert server_options()["limit_concurrency"] == LIMIT_CONCURRENCY > STALLED
    paths = world_copy(tmp_path / "w")
    with running_server(paths, SPEC, log_predictions=False, header_timeout_s=TIMEOUT_S,
                        body_timeout_s=TIMEOUT_S) as url:
        host, port = url.removeprefix("http://").split(":")
        socks = []
        for i in range(STALLED):
            s = socket.create_connection((host, int(port)))
            if i % 2:  # half a request head: no blank line ever comes
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            else:  # a complete head promising 100 bytes, then 10
                s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                          b"\r\nContent-Length: 100\r\n\r\n{\"event_id")
            socks.append(s)
        opened = time.monotonic()
        with httpx.Client(base_url=url, timeout=5) as client:
            health = [client.get("/health").status_code for _ in range(5)]
        assert health == [200] * 5  # answered while 300 clients stall
        until = opened + TIMEOUT_S + 4.0
        dropped = sum(_closed_by_server(s, until) for s in socks)
        elapsed = time.monotonic() - opened
        for s in socks:
            s.close()
        assert dropped == STALLED, f"{STALLED - dropped} stalled connections still open"
        assert elapsed < TIMEOUT_S + 4.0
        with httpx.Client(base_url=url, timeout=5) as client:
            assert client.get("/health").status_code == 200
            # a client that hangs up mid-body is a 4xx, never a 500 against the error budget
            assert 'status="5' not in client.get("/metrics").text
