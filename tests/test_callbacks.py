"""EpochTimer: the epoch's training time, with the validation run inside it left out."""

from __future__ import annotations

import types

from recsys import callbacks


def test_epoch_timer_leaves_validation_out(monkeypatch):
    clock = iter([10.0, 11.0, 14.0, 15.0, 15.5, 20.0])  # start, val 1-4 s, val 5-5.5 s, end
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    logged = {}
    module = types.SimpleNamespace(log=lambda name, value, **kw: logged.update({name: value}))
    trainer = types.SimpleNamespace(loggers=[], current_epoch=0)
    timer = callbacks.EpochTimer()
    timer.on_train_epoch_start(trainer, module)
    for _ in range(2):
        timer.on_validation_start(trainer, module)
        timer.on_validation_end(trainer, module)
    timer.on_train_epoch_end(trainer, module)
    assert logged["time/train_epoch_s"] == 10.0 - 3.0 - 0.5
