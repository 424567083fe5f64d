"""Shared fixtures of the measurement tests."""
import pytest
from torch.utils._python_dispatch import TorchDispatchMode


class _Ops(TorchDispatchMode):
    """Counts the operations that reach the kernels (on a GPU, each is a kernel launch)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def _dispatched(fn) -> int:
    fn()
    with _Ops() as ops:
        fn()
    return ops.count


@pytest.fixture
def dispatched():
    """``dispatched(fn)``: the operations one run of ``fn`` dispatches, after a first run (torch.func's set-up)."""
    return _dispatched
