"""The training tests' tiny random BERT and quick settings, shared rather than rebuilt."""

from tests.training.conftest import (  # noqa: F401
    _one_thread,
    make_tiny_config,
    tiny_bert,
    tiny_config,
)
