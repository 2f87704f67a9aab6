"""driftloop's library: the steps of the loop, tested without KFP.

Sub-packages hold one job each (policy, data, features, monitor, training, registry);
``components.kfp`` holds the thin KFP component wrappers and is the only place that
imports ``kfp``.
"""
