"""Connection guards for the uvicorn server: a client must send its request headers within
``header_timeout`` seconds of connecting (or of its previous response) and in at most
``MAX_HEAD_BYTES``, its body within the app's body timeout
(:func:`ml_assets.serving.realtime.read_body`), and the server holds at most
``LIMIT_CONCURRENCY`` connections. uvicorn alone has no header timeout (its keep-alive timer is
cancelled by the first byte, so a client sending half a header kept its connection for ever)
and, with the httptools parser, no limit on the size of a request head.

The parser is httptools (llhttp, in C), not h11: measured side by side on the 2-core machine,
h11 cost ~0.14 ms of server CPU per request and httptools ~0.05 ms, for a trivial app; at 10
concurrent lookups h11 alone nearly fills the 5 ms p99 budget. ``httptools`` comes with
``uvicorn[standard]`` (pinned in requirements.lock).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Seconds a client may take to send its request line and headers.
HEADER_TIMEOUT_S = 10.0
#: Seconds a client may take to send a request body (the ASGI-level guard in ``read_body``).
BODY_TIMEOUT_S = 10.0
#: Connections held at once; beyond it uvicorn answers 503 at once instead of queueing.
LIMIT_CONCURRENCY = 1024
#: Largest request head (request line and headers, bytes) buffered before the connection is
#: refused with a 400.
MAX_HEAD_BYTES = 16 * 1024


def guarded_protocol(header_timeout: float = HEADER_TIMEOUT_S,
                     max_head_bytes: int = MAX_HEAD_BYTES) -> type[HttpToolsProtocol]:
    """An httptools protocol class that closes connections whose headers do not arrive in
    time or outgrow ``max_head_bytes``.

    Parameters
    ----------
    header_timeout : float
        Seconds from connecting (or from the previous response) to complete request headers.
    max_head_bytes : int
        Bytes a request head may take. Counted per received chunk, so the chunk in which a
        head starts counts whole (a pipelined client's previous body included): the limit
        errs on the side of refusing.

    Returns
    -------
    type
        A subclass of uvicorn's ``HttpToolsProtocol`` for ``uvicorn.Config(http=...)``.
    """

    class GuardedHttpTools(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _in_head = False  # between the first byte of a request and the end of its headers
        _head_bytes = 0

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()  # a stalled client: drop it, no answer owed

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_head:
                self._head_bytes += len(data)
                if self._head_bytes > max_head_bytes and not self.transport.is_closing():
                    self._disarm()
                    self.send_400_response("Request head too large.")

        def on_message_begin(self) -> None:
            self._in_head, self._head_bytes = True, 0
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm()
            super().on_headers_complete()
            if self.cycle is not None and not isinstance(self.cycle.transport, _HeadWithBody):
                self.cycle.transport = _HeadWithBody(self.transport, self.cycle)

        def on_response_complete(self) -> None:
            super().on_response_complete()  # may start a pipelined request at once
            if self.cycle.response_complete and not self.transport.is_closing():
                self._arm()  # the next request on a kept-alive connection gets the same limit

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedHttpTools


class _HeadWithBody:
    """The transport one request cycle writes to: the response head (status line and headers)
    waits for the first body write and both leave in one ``write``, so a small response is one
    TCP segment and one wake-up of the client, not two (uvicorn writes them separately; on
    loopback each write also pays the receiver's TCP processing). A HEAD response, which has no
    body write, and a 100 Continue pass at once.

    Parameters
    ----------
    transport : asyncio.Transport
        The connection's transport.
    cycle : RequestResponseCycle
        The uvicorn request cycle writing through this object.
    """

    __slots__ = ("_transport", "_cycle", "_head", "_head_seen")

    def __init__(self, transport, cycle):
        self._transport, self._cycle = transport, cycle
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        cycle = self._cycle
        if not self._head_seen and cycle.response_started and cycle.scope["method"] != "HEAD":
            self._head, self._head_seen = data, True  # the first write after the start message
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._transport.write(data)

    def close(self) -> None:
        if self._head is not None:  # the app failed after starting its answer: send the head
            self._transport.write(self._head)
            self._head = None
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


def server_options(header_timeout: float = HEADER_TIMEOUT_S) -> dict:
    """The guarded ``uvicorn.Config`` keyword arguments (serve and running_server use them).

    Parameters
    ----------
    header_timeout : float
        See :func:`guarded_protocol`.

    Returns
    -------
    dict
        ``http``, ``limit_concurrency`` and ``timeout_keep_alive``.
    """
    return {"http": guarded_protocol(header_timeout), "limit_concurrency": LIMIT_CONCURRENCY,
            "timeout_keep_alive": 5}
