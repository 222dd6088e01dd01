"""The connection guards of ``serving/guard.py`` on a real uvicorn server with a one-line app
(no world to build): the header deadline on new and kept-alive connections, the head size
limit, pipelining and HEAD; and the response head leaving in one write with its body."""

import contextlib
import socket
import threading
import time
from types import SimpleNamespace

import uvicorn

from ml_assets.serving.app import free_port
from ml_assets.serving.guard import MAX_HEAD_BYTES, _HeadWithBody, server_options

TIMEOUT_S = 0.5
BODY = b'{"ok":true}'


async def _app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})


@contextlib.contextmanager
def _server():
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning", **server_options(TIMEOUT_S)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _read(sock: socket.socket, until: float) -> tuple[bytes, bool]:
    """Everything the server sends before ``until``, and whether it closed the connection."""
    data = b""
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def test_header_deadline_size_limit_pipelining_and_head():
    get = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    with _server() as port:
        # kept alive: the first answer comes, then half a head is dropped after the deadline
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(get + b"GET /x HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            started = time.monotonic()
            data, closed = _read(s, started + TIMEOUT_S + 2)
            assert closed and data.count(b"200 OK") == 1 and data.endswith(BODY)
            assert time.monotonic() - started < TIMEOUT_S + 1.5
        # a head that keeps growing is refused with a 400 once past the limit
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n")
            with contextlib.suppress(OSError):  # the server may close while we still send
                for _ in range(MAX_HEAD_BYTES // 1000 + 2):
                    s.sendall(b"X-Pad: " + b"p" * 990 + b"\r\n")
            data, closed = _read(s, time.monotonic() + 2)
            assert closed and data.startswith(b"HTTP/1.1 400") and b"head too large" in data
        # pipelined requests are answered in order; HEAD gets its head without a body
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(get * 3 + b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n")
            data, _ = _read(s, time.monotonic() + 1)
            assert data.count(b"200 OK") == 4 and data.count(BODY) == 3
            assert data.endswith(b"\r\n\r\n")


def test_response_head_waits_for_its_body():
    writes = []

    class Transport:
        write = staticmethod(writes.append)
        closed = False

        def close(self):
            self.closed = True

        def is_closing(self):
            return self.closed

    cycle = SimpleNamespace(response_started=False, scope={"method": "GET"})
    t = _HeadWithBody(Transport(), cycle)
    t.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # before the answer starts: passes at once
    cycle.response_started = True
    t.write(b"head|")
    assert writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    t.write(b"body")
    t.write(b"more")
    assert writes[1:] == [b"head|body", b"more"]  # one write for head and first body chunk
    writes.clear()
    failed = _HeadWithBody(Transport(), SimpleNamespace(response_started=True,
                                                        scope={"method": "GET"}))
    failed.write(b"head|")
    failed.close()  # the app failed after its start message: the head still goes out
    assert writes == [b"head|"] and failed.is_closing()
    writes.clear()
    head = _HeadWithBody(Transport(), SimpleNamespace(response_started=True,
                                                      scope={"method": "HEAD"}))
    head.write(b"head|")  # a HEAD answer has no body write to wait for
    assert writes == [b"head|"]
