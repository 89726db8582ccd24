"""Chat templates written by the project, and installing one on a tokenizer.

``data.chat_template`` is ``auto`` (keep the tokenizer's own template) or one of the names in
:data:`TEMPLATES`. The project's templates wrap every assistant turn (content plus its end-of-turn
token) in ``{% generation %}`` blocks, so ``apply_chat_template(..., return_assistant_tokens_mask=True)``
and TRL's ``assistant_only_loss`` work with them too. None of them trims message content: the
standardisation step strips whitespace once, so what is rendered is exactly what the row holds.

Special strings a tokenizer lacks (e.g. ``<start_of_turn>`` on SmolLM2's tokenizer) are simply
tokenised as plain text; the masks stay correct because they never search for marker strings.
"""

from __future__ import annotations

from typing import Any

# ChatML exactly as SmolLM2-135M-Instruct renders it (including its default system prompt), with
# generation markers added.
CHATML = (
    "{%- for message in messages %}"
    "{%- if loop.first and messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Llama 3 headers without the date-stamped default system prompt of the official 3.1+ template.
LLAMA3 = (
    "{{- '<|begin_of_text|>' }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% generation %}{{ message['content'] + '<|eot_id|>' }}{% endgeneration %}"
    "{%- else %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# Gemma has no system role: like Google's template, the system text opens the first user turn.
GEMMA = (
    "{{- '<bos>' }}"
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}"
    "{%- set first_user_prefix = '' %}{%- set loop_messages = messages %}"
    "{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<start_of_turn>model\\n' }}{% generation %}{{ message['content'] + '<end_of_turn>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<start_of_turn>user\\n' + (first_user_prefix if loop.first else '') + message['content'] "
    "+ '<end_of_turn>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}"
)

TEMPLATES: dict[str, str] = {"chatml": CHATML, "llama3": LLAMA3, "gemma": GEMMA}


class ChatTemplateError(ValueError):
    """The tokenizer has no usable chat template, or an unknown template name was asked for."""


def ensure_chat_template(tokenizer: Any, name: str = "auto") -> Any:
    """Make sure ``tokenizer`` can render chats; returns the same tokenizer (modified in place).

    ``auto`` keeps the tokenizer's own template and fails when it has none; a name installs
    the project's template of that name.
    """
    if name == "auto":
        if not getattr(tokenizer, "chat_template", None):
            raise ChatTemplateError(
                f"the tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template (a base model?): "
                f"set data.chat_template={'|'.join(TEMPLATES)} (e.g. gemma for Gemma models)")
        return tokenizer
    if name not in TEMPLATES:
        raise ChatTemplateError(f"data.chat_template={name!r} is unknown: use auto, {', '.join(TEMPLATES)}")
    tokenizer.chat_template = TEMPLATES[name]
    return tokenizer


def has_generation_markers(tokenizer: Any) -> bool:
    """Whether the template marks assistant text with ``{% generation %}`` (HF's own assistant masks)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return "{% generation %}" in template or "{%- generation %}" in template
