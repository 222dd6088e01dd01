"""Exports of the registry to other tools' formats (``ml-assets export ...``). Each exporter is
an optional extra and is imported only when its command runs; our registry stays the source
of truth."""
