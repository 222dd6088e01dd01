"""The built-in demo spec (``fraud.py``) and the loader of any spec, the user's own included
(``loading.py``: a ``.py``/``.toml`` file or ``package.module:NAME``, never a name to look up)."""
