"""Stop signals (SIGTERM, SIGINT) as labkit treats them: the first asks for a save-then-stop, a second one later
stops at once. Shared by training (:mod:`labkit.train.guard`) and the notebook runner (:mod:`labkit.nbrun`)."""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Ctrl-C under `accelerate launch` reaches each process twice (from the terminal, then forwarded by the launcher):
# a repeat within this window is the same request, not "stop now without saving".
REPEAT_WINDOW_S = 3.0


@contextmanager
def interrupt_children_on_stop() -> Iterator[None]:
    """For ``labkit notebooks``: the kernel runs in a session of its own, so a Ctrl-C or a SIGTERM sent to labkit
    never reaches it, and papermill would shut it down in the middle of a step. The first signal is passed to
    the kernel as SIGINT (the notebook's stop button): a training cell saves a checkpoint and stops, and the
    executed notebook ends with that cell's message. A second signal later stops labkit at once."""
    import psutil

    first: list[float] = []

    def handle(signum, frame):
        if first and time.monotonic() - first[0] > REPEAT_WINDOW_S:
            restore()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.raise_signal(signum)
            return
        if not first:
            first.append(time.monotonic())
            os.write(2, f"\nlabkit: {signal.Signals(signum).name} received: interrupting the notebook's kernel "
                        "(a training cell saves a checkpoint first)\n".encode())
        for child in psutil.Process().children():
            try:
                child.send_signal(signal.SIGINT)
            except psutil.Error:
                pass

    try:
        previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread
        previous = {}

    def restore():
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        previous.clear()

    try:
        yield
    finally:
        restore()
