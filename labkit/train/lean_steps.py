"""Host work the HF Trainer repeats every step that labkit does once: the same results, less Python between steps.

On a GPU the host waits for the device inside a training step (Unsloth's offloaded checkpointing, for one), so
what it does between the end of one step's backward and the first kernel of the next is time the GPU waits. A 1B
LoRA step takes about 150 ms on an H200; there, labkit's loop spent about 11 ms a step outside the training step
(``python -m benchmarks.gpu_overhead``). Three of the Trainer's per-step jobs walk every module and weight of
the model (1B with PEFT LoRA on 7 projections: 1,337 modules, 370 weights, 224 of them trained), though only the
trained weights matter and they do not change during training:

- the FLOP estimate counts the non-embedding parameters for every micro-batch;
- gradient clipping hands accelerate ``model.parameters()``, frozen weights and all;
- ``model.zero_grad()`` visits every weight to clear the gradients of the trained ones.

Host ms a step on this project's 2-core CPU machine, with the 1B layer count on a toy width
(``python -m benchmarks.gpu_overhead --shape host --device cpu ...``, reports/gpu_benchmark.md): clipping 5.2-5.5 ->
1.7-1.8, scheduler + zero_grad 2.6-2.8 -> 0.2, all host time outside the training step 21.1-21.8 -> 14.1-14.5
(the bare loop: 8.0-9.2; most of the rest is labkit's every-step weight check, which on a GPU runs only at logging
steps). The FLOP count took 2.5 ms on a 1B-shaped PEFT model. What this gains on a GPU was not measured yet.
FSDP, DeepSpeed and XLA clip their own way and keep the Trainer's code.
"""

from __future__ import annotations

import contextlib

# Where accelerate's clip_grad_norm_ is plain torch clipping of the list it is given (accelerate 1.15).
_PLAIN_CLIPPING = ("NO", "MULTI_CPU", "MULTI_GPU")


def trained_weights(model) -> list:
    """The weights that train: the only ones that get gradients."""
    return [p for p in model.parameters() if p.requires_grad]


class LeanStepsMixin:
    """Mixed into labkit's SFTTrainer (before the Trainer class): see the module docstring."""

    _flop_params: int | None = None
    _trained: list | None = None   # listed at each train() (DDP's wrapper holds the same tensors)

    def floating_point_ops(self, inputs):
        main_input = getattr(self.model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(self.model, "num_parameters"):
            return super().floating_point_ops(inputs)
        if self._flop_params is None:
            self._flop_params = self.model.num_parameters(exclude_embeddings=True)
        return 6 * inputs[main_input].numel() * self._flop_params

    def _clip_grad_norm(self, model):
        if self.accelerator.distributed_type.name not in _PLAIN_CLIPPING or self._has_mixed_mesh_grads(model):
            return super()._clip_grad_norm(model)
        if self._trained is None:   # clipping outside train()
            self._trained = trained_weights(model)
        return self.accelerator.clip_grad_norm_(self._trained, self.args.max_grad_norm)

    def train(self, *args, **kwargs):
        self._trained = trained_weights(self.model)   # which weights train may differ between two train() calls
        with zero_grad_from_list(self.model, self._trained):
            return super().train(*args, **kwargs)


@contextlib.contextmanager
def zero_grad_from_list(model, trained: list):
    """While training, ``model.zero_grad()`` clears the gradients of ``trained`` (the list made once) instead of
    walking every module (frozen weights never have one). Gone again afterwards. Under DDP the Trainer calls the
    wrapper's zero_grad, which keeps torch's own."""

    def zero_grad(set_to_none: bool = True) -> None:
        for p in trained:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_()
                p.grad.zero_()

    had_own = "zero_grad" in model.__dict__
    if not had_own:
        model.zero_grad = zero_grad
    try:
        yield
    finally:
        if not had_own:
            model.__dict__.pop("zero_grad", None)
