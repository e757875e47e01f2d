"""The learner's arithmetic on one thread.

Its products are tiny (a 7x7x512 grid times a 512x48 projection; an MLP of 96 units over about a thousand
candidates), and worker threads cost far more than the work: measured here beside one busy core, a 512x48 vector
product took 1.8 ms with numpy's BLAS on two threads and 5 microseconds on one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def on_one_thread() -> Iterator[None]:
    """numpy's BLAS and torch on one thread inside the block; both restored after it."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)
