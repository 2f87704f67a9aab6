"""Retraining: training sets by strategy, seeded trainers, champion/challenger evaluation.

Modules: :mod:`.datasets` (which rows to train on), :mod:`.trainers` (scikit-learn and
Keras models behind one ``predict -> P(label=1)`` contract), :mod:`.pyfunc` (the MLflow
pyfunc wrappers), :mod:`.evaluate` (metrics and the promotion gate), :mod:`.workflow`
(build -> train -> evaluate -> register in one call). Nothing heavy is imported here.
"""
