"""driftloop: keeps a deployed model honest.

The application layer: the command line (:mod:`driftloop.cli`), the demo and the
dashboard. Everything they run lives in the library below (``components``, ``serving``,
``pipelines``); importing the library also applies its process-wide guards.
"""

from components import __version__

__all__ = ["__version__"]
