"""Compatibility alias: the data-window logic moved to :mod:`components.windows` (the library).

Only ``components/kfp/canary.py`` still imports ``read_source`` from here; delete this
module once it imports ``components.windows`` (or ``components.tables.read_table``).
"""

from components.windows import read_source  # noqa: F401
