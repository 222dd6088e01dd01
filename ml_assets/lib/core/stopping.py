"""Stopping on SIGINT and SIGTERM: long commands stop within seconds at the next safe point and
say how far they got, instead of finishing (or ignoring the signal) for minutes.

Every write in the project is atomic (temp file + rename, SQLite transactions), so raising at
any point leaves the lake and the control plane consistent; a killed writer's temp file is
swept later (:func:`~ml_assets.lib.core.paths.sweep_stale_temp_files`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM asked the command to stop; ``where`` says how far it got."""

    def __init__(self, signal_name: str, where: str = ""):
        super().__init__(signal_name)
        self.signal_name, self.where = signal_name, where


_STOP: dict = {"signal": None, "wakeup": None}


def _on_signal(signum, _frame) -> None:
    _STOP["signal"] = signal.Signals(signum).name
    raise Stopped(_STOP["signal"])


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM raise :class:`Stopped` in the main thread, also when they arrive
    while Dagster's own handler is installed: a run in process only flags a signal that lands
    outside an op's compute and forgets it when the run ends, so every signal is also noted on
    a wakeup pipe that :func:`raise_if_stopped` reads after each run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    handlers = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    _STOP.update(signal=None, wakeup=read_fd)
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        for s, handler in handlers.items():
            signal.signal(s, handler)
        _STOP.update(wakeup=None)
        os.close(read_fd)
        os.close(write_fd)


def raise_if_stopped(where: str = "") -> None:
    """Raise :class:`Stopped` when SIGINT or SIGTERM arrived since :func:`stop_on_signals`
    began (a checkpoint between steps; a no-op outside it).

    Parameters
    ----------
    where : str
        How far the command got (e.g. ``"after partition 2026-08-01T12"``), kept on the error.

    Raises
    ------
    Stopped
        The signal's name and ``where``.
    """
    if _STOP["wakeup"] is not None:
        with contextlib.suppress(BlockingIOError):
            for signum in os.read(_STOP["wakeup"], 512):
                if signum in (signal.SIGINT, signal.SIGTERM):
                    _STOP["signal"] = signal.Signals(signum).name
    if _STOP["signal"]:
        raise Stopped(_STOP["signal"], where)
