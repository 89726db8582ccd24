"""The two sides of the chat app's "Compare" tab (:func:`labkit.infer.chat.compare_tab`): one message goes to the
base model and to the fine-tuned one, and both answers stream into two columns side by side, each titled with its
model.

The two answers are generated one after the other, not at once: both would compete for the same CPU cores and
torch's global seed (each generation seeds it), so running them in turn keeps each reply what it would be alone
and the comparison fair (same prompt, same sampling, same seed).

For a run, base and tuned need not be two models in memory: the tuned model is a ``PeftModel``, and the base
model is the same weights with the adapter switched off (``disable_adapter()``), as the evaluation does.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager


@dataclass
class Side:
    """One column of the Compare tab: what it is called on screen and the model that answers there."""

    label: str
    model: Any
    tokenizer: Any
    context: Callable[[], ContextManager] = field(default=nullcontext)   # entered while this side generates


def run_sides(model, tokenizer, base_label: str, tuned_label: str) -> list[Side]:
    """Base and tuned from ONE PeftModel: the base side generates with the adapter disabled."""
    if not hasattr(model, "disable_adapter"):
        raise ValueError("compare mode needs the tuned model with its LoRA adapter (a PeftModel): train the run "
                         "first (notebook 02 or `labkit train`)")
    return [Side(base_label, model, tokenizer, model.disable_adapter), Side(tuned_label, model, tokenizer)]
