"""driftloop's library: the steps of the loop, tested without KFP.

Sub-packages hold one job each (policy, data, features, monitor, training, registry);
``components.kfp`` holds the thin KFP component wrappers and is the only place that
imports ``kfp``. Errors (:mod:`components.errors`), settings (:mod:`components.settings`)
and JSON/table helpers live here too, so nothing in the library imports the
application package ``driftloop`` above it.

Importing this package makes pyarrow single-threaded (see :mod:`components.arrow`);
``serving`` and ``pipelines`` import it first for the same reason.

>>> __version__
'0.1.0'
"""

from components.arrow import single_threaded_arrow

__version__ = "0.1.0"

single_threaded_arrow()
