"""The token meter and the loss/weight guard, immediate (CPU) and deferred to logging steps (CUDA)."""

import warnings

import pytest
import torch
from transformers import TrainerControl, TrainerState

from labkit.train.callbacks import EmptyBatchWarning, StepTimer, TokenMeter, TrainingDiverged


def batch(trained: int, length: int = 6) -> dict:
    labels = torch.full((1, length), -100)
    labels[0, length - trained:] = 7
    return {"labels": labels, "attention_mask": torch.ones(1, length, dtype=torch.long)}


class Adapter(torch.nn.Module):
    def __init__(self, value: float = 0.0):
        super().__init__()
        self.lora = torch.nn.Parameter(torch.full((2,), value))


def step_end(timer: StepTimer, step: int, max_steps: int = 10, should_log: bool = False,
             model: torch.nn.Module | None = None) -> None:
    state, control = TrainerState(global_step=step, max_steps=max_steps), TrainerControl(should_log=should_log)
    timer.on_step_begin(None, state, control)
    timer.on_step_end(None, state, control, model=model or Adapter())


def test_immediate_meter_counts_and_warns_at_once():
    meter = TokenMeter()
    assert meter.add_batch(batch(3)) == 3
    with pytest.warns(EmptyBatchWarning):
        meter.add_batch(batch(0))
    with pytest.raises(TrainingDiverged, match="step 4"):
        meter.add_loss(torch.tensor(float("nan")), 4)
    out = meter.drain()
    assert (out["trained_tokens"], out["tokens"], out["empty_batches"]) == (3, 12, 1)


def test_deferred_meter_reads_nothing_until_a_check():
    meter = TokenMeter(defer=True)
    meter.add_batch(batch(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # no warning while the counts stay on the device
        meter.add_batch(batch(0))
        meter.add_loss(torch.tensor(float("inf")), 2)    # no error yet either
    assert torch.is_tensor(meter.trained)
    with pytest.warns(EmptyBatchWarning), pytest.raises(TrainingDiverged, match="NaN/inf.*step 3"):
        meter.check(3)
    assert meter.empty_batches == 1
    out = meter.drain()
    assert (out["trained_tokens"], out["tokens"]) == (3, 12)
    meter.check(4)                                       # the failure was consumed: nothing pending now


def test_deferred_guard_checks_on_logging_and_last_steps_only():
    meter = TokenMeter(defer=True)
    timer = StepTimer(meter)
    meter.add_loss(torch.tensor(float("nan")), 1)
    step_end(timer, 1)                                   # not a logging step: no sync, no check
    with pytest.raises(TrainingDiverged, match="step 2"):
        step_end(timer, 2, should_log=True)
    meter.add_loss(torch.tensor(float("nan")), 9)
    with pytest.raises(TrainingDiverged, match="step 10"):
        step_end(timer, 10, max_steps=10)                # the last step always checks
    with pytest.raises(TrainingDiverged, match="adapter weights"):
        step_end(timer, 5, should_log=True, model=Adapter(float("nan")))
    step_end(timer, 6, model=Adapter(float("nan")))      # deferred: weights are read at the next due step


def test_immediate_guard_checks_weights_every_step():
    timer = StepTimer(TokenMeter())
    step_end(timer, 1)
    with pytest.raises(TrainingDiverged, match="adapter weights.*step 2"):
        step_end(timer, 2, model=Adapter(float("nan")))


def test_one_process_seeing_two_gpus_trains_on_one(capsys):
    from types import SimpleNamespace

    from labkit.train.trainer import one_gpu_without_launcher

    args = SimpleNamespace(n_gpu=2, _n_gpu=2, device="cuda:0")
    one_gpu_without_launcher(args)
    assert args._n_gpu == 1
    assert "accelerate launch" in capsys.readouterr().out
    single = SimpleNamespace(n_gpu=1, _n_gpu=1, device="cuda:0")
    one_gpu_without_launcher(single)
    assert single._n_gpu == 1


def test_step_time_includes_the_gaps_between_steps_but_not_evaluation(monkeypatch):
    import labkit.train.callbacks as callbacks

    clock = iter([0.0, 1.0, 3.0, 10.0, 11.0])   # begin 1, end 1, end 2 (begun at 2.0), begin 3, end 3

    class FakeTime:
        now = 0.0

        @classmethod
        def perf_counter(cls):
            cls.now = next(clock)
            return cls.now

        @classmethod
        def process_time(cls):
            return cls.now

    monkeypatch.setattr(callbacks, "time", FakeTime)
    meter = TokenMeter()
    timer = StepTimer(meter)
    state, control = TrainerState(global_step=1, max_steps=10), TrainerControl()
    timer.on_train_begin(None, state, control)
    timer.on_step_begin(None, state, control)
    timer.on_step_end(None, state, control)          # step 1: 0 -> 1
    timer.on_step_begin(None, state, control)        # step 2 starts where step 1 ended (the batch fetch counts)
    timer.on_step_end(None, state, control)          # step 2: 1 -> 3
    timer.on_evaluate(None, state, control)          # an evaluation between steps 2 and 3 is not training time
    timer.on_step_begin(None, state, control)
    timer.on_step_end(None, state, control)          # step 3: 10 -> 11
    out = meter.drain()
    assert (out["step_seconds"], out["step_cpu_seconds"], out["step_time"]) == (4.0, 4.0, 4.0 / 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_weight_check_finds_one_bad_value_among_many_weights(bad, dtype):
    from labkit.train.callbacks import largest_magnitude, trainable_weights_finite

    model = torch.nn.Sequential(*[torch.nn.Linear(8, 8, dtype=dtype) for _ in range(5)])
    model[0].weight.requires_grad_(False)
    assert trainable_weights_finite(model)
    with torch.no_grad():
        model[0].weight[1, 1] = bad           # a frozen weight is not the adapter's
        assert trainable_weights_finite(model)
        model[3].bias[2] = bad
    assert not trainable_weights_finite(model)
    huge = [torch.full((3,), 3e38), torch.ones(2)]   # finite, though any sum of squares would overflow
    assert float(largest_magnitude(huge)) == pytest.approx(3e38)


def test_weight_check_without_trained_weights_passes():
    from labkit.train.callbacks import trainable_weights_finite

    assert trainable_weights_finite(torch.nn.Linear(2, 2).requires_grad_(False))
