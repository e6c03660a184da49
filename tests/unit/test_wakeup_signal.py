"""The wake signal the worker threads of `outbox worker --listen` wait on (runner/worker/wakeup.py)."""

from __future__ import annotations

import threading

from runner.worker.wakeup import WakeSignal


def test_a_wake_up_during_the_claim_is_not_missed() -> None:
    wake = WakeSignal()
    seen = wake.count()  # read before the claim
    wake.wake()  # the notification arrives while the thread claims
    assert wake.wait(seen, 3600) is True


def test_without_a_wake_up_the_wait_lasts_its_interval() -> None:
    wake = WakeSignal()
    assert wake.wait(wake.count(), 0) is False


def test_a_waiting_thread_is_woken_and_close_ends_every_wait() -> None:
    wake = WakeSignal()
    results: list[bool] = []
    started = threading.Barrier(2)

    def waiter() -> None:
        seen = wake.count()
        started.wait()
        results.append(wake.wait(seen, 3600))
        results.append(wake.wait(wake.count(), 3600))  # ends only by close()

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait()
    wake.wake()
    wake.close()
    thread.join(timeout=60)
    assert not thread.is_alive() and results == [True, False]
