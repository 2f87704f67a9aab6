"""Retraining: training sets by strategy, seeded trainers, champion/challenger evaluation, registration rule.

Modules: :mod:`.datasets` (which rows to train on), :mod:`.trainers` (scikit-learn and
Keras models behind one ``predict -> P(label=1)`` contract), :mod:`.pyfunc` (the MLflow
pyfunc wrappers), :mod:`.evaluate` (metrics and the promotion gate), :mod:`.workflow`
(the phases training set -> fit -> gate -> register and alias, and ``retrain`` composing
them), :mod:`.files` (the phases' results as files for the KFP steps),
:mod:`.diagnostics` (ROC curve and confusion matrix), :mod:`.verdict_report` (the
verdict as HTML and Markdown), :mod:`.reference` (reference sample and profile).
Nothing heavy is imported here.
"""
