"""Notebook 03, inference: generation (greedy or sampled, streamed), base vs fine-tuned side by side, the chat
app with its quiz and tools, and loading a run's base and tuned models."""

from labkit.lazy import lazy_exports

_EXPORTS = {
    "Sampling": "generate", "generate_chat": "generate", "stream_chat": "generate", "ask": "generate",
    "end_of_turn_ids": "generate", "StreamError": "generate",
    "load_models": "loadrun", "load_base": "loadrun", "load_tuned": "loadrun", "AdapterMissing": "loadrun",
    "example_conversations": "compare", "prompt_and_reference": "compare", "side_by_side": "compare",
    "save_side_by_side": "compare",
    "build_app": "chat", "run_chat": "chat",
    "make_registry": "tools", "run_with_tools": "tools", "model_generate": "tools", "has_tool_role": "tools",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
