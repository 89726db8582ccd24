"""Render conversations with the tokenizer's chat template and build response-only loss masks.

How the mask is found, for any template and without searching for marker strings: for each assistant
message ``i`` the template renders (a) the conversation before it with the generation prompt, and
(b) the conversation up to and including it. Both must be prefixes of the full rendering, so the
assistant turn is the text between their ends; trailing whitespace after the end-of-turn token (the
``\\n`` between ChatML turns) stays masked. The text is then tokenised *segment by segment*
(masked, trained, masked, ...), which gives every token exactly one side: a token can never straddle
a prompt and a response, and the prompt tokens are the ones the model sees at inference time, where
the prompt is tokenised on its own and the answer is generated after it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from labkit.templates import ChatTemplateError

ASSISTANT = "assistant"


class TemplateMismatchError(ValueError):
    """The template renders a conversation's prefix differently from the full conversation."""


@dataclass(frozen=True)
class Segment:
    text: str
    trained: bool


def _render(tokenizer: Any, messages: list[dict], add_generation_prompt: bool = False) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateError("the tokenizer has no chat template: call labkit.data.ensure_chat_template("
                                "tokenizer, cfg.data.chat_template) or set data.chat_template=chatml|llama3|gemma")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def render_text(tokenizer: Any, messages: list[dict]) -> str:
    """The whole conversation as the model sees it in training (for display)."""
    return _render(tokenizer, messages)


def render_prompt(tokenizer: Any, messages: list[dict]) -> str:
    """The inference prompt: the conversation so far plus the assistant header to generate after."""
    if messages and messages[-1].get("role") == ASSISTANT:
        raise ValueError("render_prompt got a conversation ending with an assistant turn: pass the messages "
                         "before it (see labkit.data.split_prompt)")
    return _render(tokenizer, messages, add_generation_prompt=True)


def split_prompt(messages: list[dict]) -> tuple[list[dict], str]:
    """Split a conversation into the prompt messages and the final assistant answer (the reference)."""
    if not messages or messages[-1].get("role") != ASSISTANT:
        raise ValueError("the conversation does not end with an assistant turn, so it has no answer to split off")
    return messages[:-1], messages[-1]["content"]


def conversation_segments(tokenizer: Any, messages: list[dict]) -> list[Segment]:
    """The rendered conversation cut into masked and trained (assistant) pieces."""
    full = _render(tokenizer, messages)
    segments: list[Segment] = []
    position = 0
    for index, message in enumerate(messages):
        if message.get("role") != ASSISTANT:
            continue
        head = _render(tokenizer, messages[:index], add_generation_prompt=True)
        upto = _render(tokenizer, messages[: index + 1])
        if not (full.startswith(head) and full.startswith(upto) and len(head) >= position):
            raise TemplateMismatchError(
                f"the chat template renders messages[:{index}] differently inside the full conversation, so the "
                "assistant turns cannot be located; use a named template (data.chat_template=chatml|llama3|gemma)")
        end = len(upto.rstrip())
        segments.append(Segment(full[position:len(head)], trained=False))
        segments.append(Segment(full[len(head):end], trained=True))
        position = end
    segments.append(Segment(full[position:], trained=False))
    return [segment for segment in segments if segment.text]


def tokenize_conversation(tokenizer: Any, messages: list[dict], *, max_length: int | None = None,
                          warn: bool = True, example_id: str | None = None) -> dict[str, list[int]]:
    """Token ids and ``assistant_masks`` (1 = trained) for one conversation, truncated to ``max_length``.

    Every assistant turn is trained including its end-of-turn token; system and user turns are masked.
    Warns when nothing trainable is left (e.g. the answer was cut off by truncation).
    """
    input_ids: list[int] = []
    masks: list[int] = []
    for segment in conversation_segments(tokenizer, messages):
        ids = tokenizer(segment.text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        masks += [int(segment.trained)] * len(ids)
    if max_length is not None:
        input_ids, masks = input_ids[:max_length], masks[:max_length]
    if warn and not any(masks):
        name = f"example {example_id!r}" if example_id is not None else "an example"
        warnings.warn(f"{name} has no trainable token (max_length={max_length}): it adds nothing to training; "
                      "raise data.max_seq_length or set data.max_tokens to drop such rows", stacklevel=2)
    return {"input_ids": input_ids, "assistant_masks": masks}


def end_of_turn_text(tokenizer: Any) -> str:
    """The text a template puts after an assistant answer (e.g. ``<|im_end|>``): a stop string for generation."""
    probe = "labkit-probe"
    messages = [{"role": "user", "content": "hi"}, {"role": ASSISTANT, "content": probe}]
    trained = [s.text for s in conversation_segments(tokenizer, messages) if s.trained]
    return trained[-1].split(probe, 1)[-1]


def end_of_turn_token_id(tokenizer: Any) -> int | None:
    """The id of the end-of-turn token when it is a single token of the vocabulary, else None."""
    ids = tokenizer(end_of_turn_text(tokenizer), add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None
