"""The serving hot path's read of the control plane: aliases and a few settings in one query.

Serving reads it on every request, so a flip (kill switch, alias, rollout stage) takes effect on
the next request without a redeploy. It runs on a per-thread read-only connection kept open by
the backend: tens of microseconds, no writer lock.
"""

from __future__ import annotations

from ml_assets.lib.core.registry.backend import SqliteBackend


class ControlSnapshotReader:
    """Aliases of one model plus chosen settings, read together (one consistent snapshot).

    Parameters
    ----------
    backend : SqliteBackend
        The registry's backend (supplies the per-thread read-only connection).
    model_name : str
        The model whose aliases are read.
    setting_keys : tuple of str
        The settings read with them.
    """

    def __init__(self, backend: SqliteBackend, model_name: str, setting_keys: tuple[str, ...]):
        self.backend, self.model_name = backend, model_name
        self._params = (model_name, *setting_keys)
        marks = ", ".join("?" * len(setting_keys))
        self._sql = ("SELECT 'alias', alias, version FROM aliases WHERE model_name = ? "
                     f"UNION ALL SELECT 'setting', key, value FROM settings WHERE key IN ({marks})")

    def read(self) -> tuple[dict[str, str], dict[str, str]]:
        """One snapshot.

        Returns
        -------
        aliases : dict
            ``{alias: version}`` for the aliases that are set.
        settings : dict
            ``{key: value}`` for the requested settings that are set.
        """
        aliases, settings = {}, {}
        for kind, key, value in self.backend.read_only().execute(self._sql, self._params):
            (aliases if kind == "alias" else settings)[key] = value
        return aliases, settings
