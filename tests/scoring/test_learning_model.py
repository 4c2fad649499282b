"""The learner's own choices, on generated feature matrices (no tenant data)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from scoring.learning import model


def leads(n: int, noise: int, seed: int):
    """Two features that matter and `noise` that don't, as rule features (0/1)."""
    rng = np.random.default_rng(seed)
    signal = rng.random((n, 2)) < 0.5
    X = np.hstack([signal, rng.random((n, noise)) < 0.3]).astype(float)
    z = -1 + 1.5 * signal[:, 0] + 1.0 * signal[:, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return sparse.csr_matrix(X), y


def test_few_leads_and_many_rules_get_stronger_regularization_chosen_on_training_leads():
    X, y = leads(300, noise=150, seed=1)
    c = model.choose_c(X, y)
    assert c < model.REGULARIZATION_C
    # It ranks new leads from the same business better than the default would.
    X_new, y_new = leads(5000, noise=150, seed=2)
    chosen = model.auc(np.asarray(X_new @ model.fit_points(X, y, c)).ravel(), y_new)
    default = model.auc(np.asarray(X_new @ model.fit_points(X, y)).ravel(), y_new)
    assert chosen > default + 0.01


def test_the_default_stays_when_cross_validation_cannot_tell():
    X, y = leads(3000, noise=5, seed=3)
    assert model.choose_c(X, y) == model.REGULARIZATION_C
