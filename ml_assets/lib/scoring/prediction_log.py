"""Realtime predictions and the features they used, logged to the lake in batches.

The request path only appends a dict to an in-memory queue (sub-microsecond, never blocks);
a background thread writes one Parquet file per flush under
``lake/prediction_log/<YYYY-MM-DDTHH>/`` (temp file + rename, so readers never see a partial
file). If the queue is full the record is dropped and counted, never the request delayed."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import uuid
from datetime import UTC, datetime

import pandas as pd

from ml_assets.lib.core.catalog import PREDICTION_LOG, Catalog
from ml_assets.lib.core.lake import HOUR_FILE_FORMAT
from ml_assets.lib.core.paths import DataPaths


class PredictionLogger:
    """Queue of prediction records written to ``prediction_log`` by a background thread.

    Records are flushed every ``flush_rows`` records or ``flush_seconds`` seconds, whichever
    comes first, into the hour (UTC) of the write.

    Parameters
    ----------
    paths : DataPaths
    flush_rows : int
        Pending records that trigger a write.
    flush_seconds : float
        Longest wait before pending records are written, seconds.
    max_queue : int
        Records held in memory; beyond it new records are dropped (counted in ``dropped``).
    """

    def __init__(self, paths: DataPaths, flush_rows: int = 500, flush_seconds: float = 1.0,
                 max_queue: int = 100_000):
        self.table = Catalog(paths.lake).table(PREDICTION_LOG)
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._q: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0
        self.files = 0
        self.last_error: str | None = None

    def log(self, record: dict) -> None:
        """Queue one record without blocking; drop it (counted) when the queue is full.

        Parameters
        ----------
        record : dict
            One future ``prediction_log`` row: flat column -> value.
        """
        try:
            self._q.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def start(self) -> PredictionLogger:
        """Start the daemon writer thread; returns ``self``."""
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the writer and flush everything still queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._flush(self._drain())

    def _drain(self, limit: int | None = None) -> list[dict]:
        out = []
        while limit is None or len(out) < limit:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                break
        return out

    def _run(self) -> None:
        pending: list[dict] = []
        deadline = time.monotonic() + self.flush_seconds
        while not self._stop.is_set():
            with contextlib.suppress(queue.Empty):
                pending.append(self._q.get(timeout=0.1))
            pending += self._drain(self.flush_rows - len(pending))
            if len(pending) >= self.flush_rows or (pending and time.monotonic() >= deadline):
                self._flush(pending)
                pending = []
                deadline = time.monotonic() + self.flush_seconds
        self._flush(pending)

    def _flush(self, records: list[dict]) -> None:
        if not records:
            return
        try:
            df = pd.DataFrame.from_records(records)
            hour = datetime.now(UTC).strftime(HOUR_FILE_FORMAT)
            name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self.table.write(f"{hour}/{name}", df)
            self.written += len(records)
            self.files += 1
        except Exception as exc:  # a logging failure must never take serving down
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.dropped += len(records)

    def stats(self) -> dict:
        """Counters: records ``written`` and ``dropped``, ``files``, ``queued``, ``last_error``."""
        return {"written": self.written, "dropped": self.dropped, "files": self.files,
                "queued": self._q.qsize(), "last_error": self.last_error}
