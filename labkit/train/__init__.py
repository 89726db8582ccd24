"""Notebook 02, training: LoRA setup, model loading (Unsloth or transformers + PEFT), TRL's SFTTrainer with
labkit's callbacks and guards, resume, multi-GPU launch, the resource planner, and the training plots."""

from labkit.lazy import lazy_exports

_EXPORTS = {
    "run_training": "trainer", "build_trainer": "trainer", "latest_checkpoint": "trainer", "TrainingOOM": "trainer",
    "load_for_training": "loading", "load_training_tokenizer": "loading", "LoadedModel": "loading",
    "apply_lora": "lora", "count_trainable": "lora",
    "read_log": "callbacks", "TrainingDiverged": "callbacks",
    "show_plan": "planner", "plan": "planner",
    "plot_training": "plots", "training_table": "plots", "config_table": "plots",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
