"""Shared test set-up: Theano flags and Lasagne shims first, and where the shared data lives."""
import os

import pytest

import compat  # noqa: F401  (sets Theano's flags before anything imports theano)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Data shipped beside the checkout (``../shared/data``), or ``AMSGRAD_SHARED_DATA``.
SHARED_DATA = os.environ.get("AMSGRAD_SHARED_DATA") or os.path.join(
    os.path.dirname(REPO), "shared", "data")


@pytest.fixture
def shared_data():
    """Path of the shared data directory; skips the test when it is missing."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("shared data not found at %s (set AMSGRAD_SHARED_DATA)" % SHARED_DATA)
    return SHARED_DATA
