"""SIGTERM inside a launcher: the first one cancels, later ones cannot cut the clean-up short."""

from __future__ import annotations

import os
import signal

import pytest

from distml.training.cancel import Cancelled, sigterm_cancels


def test_first_sigterm_cancels_and_a_second_during_clean_up_is_ignored():
    previous = signal.getsignal(signal.SIGTERM)
    cleaned = False
    with pytest.raises(Cancelled, match="the run was cancelled"), sigterm_cancels("the run"):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # let the handler run
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # a second one, while cleaning up
            cleaned = True
    assert cleaned
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is put back
