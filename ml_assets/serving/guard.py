"""Connection guards for the uvicorn server: a client must send its request headers within
``header_timeout`` seconds of connecting (or of its previous response), its body within the
app's body timeout (:func:`ml_assets.serving.realtime.read_body`), and the server holds at most
``LIMIT_CONCURRENCY`` connections. uvicorn alone has no header timeout: its keep-alive timer is
cancelled by the first byte, so a client sending half a header kept its connection for ever.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a client may take to send its request line and headers.
HEADER_TIMEOUT_S = 10.0
#: Seconds a client may take to send a request body (the ASGI-level guard in ``read_body``).
BODY_TIMEOUT_S = 10.0
#: Connections held at once; beyond it uvicorn answers 503 at once instead of queueing.
LIMIT_CONCURRENCY = 1024
#: Largest incomplete request head (bytes) h11 buffers before refusing it.
MAX_INCOMPLETE_EVENT_SIZE = 16 * 1024


def guarded_protocol(header_timeout: float = HEADER_TIMEOUT_S) -> type[H11Protocol]:
    """An h11 protocol class that closes connections whose headers do not arrive in time.

    Parameters
    ----------
    header_timeout : float
        Seconds from connecting (or from the previous response) to complete request headers.

    Returns
    -------
    type
        A subclass of uvicorn's ``H11Protocol`` for ``uvicorn.Config(http=...)``.
    """

    class HeaderDeadlineH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _waiting_after = None  # the request cycle the deadline was armed after

        def _arm(self) -> None:
            self._disarm()
            self._waiting_after = self.cycle
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
            if self.cycle is not self._waiting_after:  # a new request's headers are complete
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()  # may start a pipelined request at once
            idle = self.cycle is None or self.cycle.response_complete
            if idle and not self.transport.is_closing():
                self._arm()  # the next request on a kept-alive connection gets the same limit

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineH11


def server_options(header_timeout: float = HEADER_TIMEOUT_S) -> dict:
    """The guarded ``uvicorn.Config`` keyword arguments (serve and running_server use them).

    Parameters
    ----------
    header_timeout : float
        See :func:`guarded_protocol`.

    Returns
    -------
    dict
        ``http``, ``limit_concurrency``, ``timeout_keep_alive`` and
        ``h11_max_incomplete_event_size``.
    """
    return {"http": guarded_protocol(header_timeout), "limit_concurrency": LIMIT_CONCURRENCY,
            "timeout_keep_alive": 5, "h11_max_incomplete_event_size": MAX_INCOMPLETE_EVENT_SIZE}
