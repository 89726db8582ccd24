"""Response-only loss masks and the project's chat templates."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.data import (ChatTemplateError, end_of_turn_text, ensure_chat_template, render_prompt, render_text,
                         split_prompt, tokenize_conversation)
from labkit.templates import has_generation_markers

END_OF_TURN = {"auto": "<|im_end|>", "chatml": "<|im_end|>", "llama3": "<|eot_id|>", "gemma": "<end_of_turn>"}


@pytest.fixture(scope="module")
def tokenizers(smol_tokenizer):
    """SmolLM2's own ChatML tokenizer, and copies with the project's templates installed."""
    out = {"auto": smol_tokenizer}
    for name in ("chatml", "llama3", "gemma"):
        out[name] = ensure_chat_template(copy.deepcopy(smol_tokenizer), name)
    return out


def trained_text(tokenizer, encoded) -> str:
    ids = [i for i, m in zip(encoded["input_ids"], encoded["assistant_masks"]) if m]
    return tokenizer.decode(ids, clean_up_tokenization_spaces=False)


def all_text(tokenizer, encoded) -> str:
    return tokenizer.decode(encoded["input_ids"], clean_up_tokenization_spaces=False)


FRAGMENTS = ["<|", "|>", "<|im_end|>", "<|im_start|>", "<end_of_turn>", "<|eot_id|>", "\n", "\n\n", " ", "  ",
             "\t", "{{", "%}", "assistant", "user", "model", "é", "中文", "🙂", "a", "Z", "0", ".", "'", '"']
# SmolLM2's GGUF vocabulary lacks the byte tokens of six control characters and of the UTF-8 lead bytes of
# code points above U+3FFFF (they become <|endoftext|>): a loss of the tokenizer, not of the mask, so the
# generated text stays within what it can represent (emoji and CJK included).
CHARACTERS = st.characters(codec="utf-8", max_codepoint=0x3FFFF, exclude_categories=("Cc", "Cs"))
text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), CHARACTERS),
                min_size=1,
                max_size=12).map("".join)


@st.composite
def conversations(draw):
    messages = [{"role": "system", "content": draw(text)}] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 3))):
        messages += [{"role": "user", "content": draw(text)}, {"role": "assistant", "content": draw(text)}]
    if draw(st.booleans()):  # a trailing user turn must stay masked too
        messages.append({"role": "user", "content": draw(text)})
    return messages


@pytest.mark.parametrize("template", ["auto", "llama3", "gemma"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=conversations())
def test_trained_tokens_are_exactly_the_assistant_turns(tokenizers, template, messages):
    tokenizer = tokenizers[template]
    encoded = tokenize_conversation(tokenizer, messages, warn=False)
    expected = "".join(m["content"] + END_OF_TURN[template] for m in messages if m["role"] == "assistant")
    assert trained_text(tokenizer, encoded) == expected
    assert all_text(tokenizer, encoded) == render_text(tokenizer, messages)
    assert len(encoded["input_ids"]) == len(encoded["assistant_masks"])


CONVERSATION = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "4."}, {"role": "user", "content": "And 3+3?"},
                {"role": "assistant", "content": "6, since 3+3=6."}]


@pytest.mark.parametrize("template", ["chatml", "gemma"])
def test_masks_agree_with_transformers_generation_masks(tokenizers, template):
    tokenizer = tokenizers[template]
    assert has_generation_markers(tokenizer)
    theirs = tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True,
                                           return_assistant_tokens_mask=True)
    ours = tokenize_conversation(tokenizer, CONVERSATION)
    assert trained_text(tokenizer, ours) == trained_text(tokenizer, theirs) == "4." + END_OF_TURN[template] + \
        "6, since 3+3=6." + END_OF_TURN[template]


def test_llama3_on_a_foreign_tokenizer_where_offset_masks_overreach(tokenizers):
    """With Llama-3 strings as plain text, BPE merges '><' across the end of a turn; transformers' offset-based
    mask then trains that token, while the segment-wise tokenisation keeps turns apart."""
    tokenizer = tokenizers["llama3"]
    theirs = tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True,
                                           return_assistant_tokens_mask=True)
    assert trained_text(tokenizer, theirs) == "4.<|eot_id|><6, since 3+3=6.<|eot_id|>"
    assert trained_text(tokenizer, tokenize_conversation(tokenizer, CONVERSATION)) == \
        "4.<|eot_id|>6, since 3+3=6.<|eot_id|>"


def test_smollm2_own_template_matches_transformers_tokenisation(tokenizers):
    tokenizer = tokenizers["auto"]
    ours = tokenize_conversation(tokenizer, CONVERSATION)
    assert ours["input_ids"] == tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True)["input_ids"]
    assert ours["assistant_masks"][-2:] == [1, 0]   # <|im_end|> trained, the newline after it masked


@pytest.mark.parametrize("messages", [CONVERSATION[1:3], CONVERSATION])
def test_chatml_template_renders_like_smollm2(tokenizers, messages):
    assert render_text(tokenizers["chatml"], messages) == render_text(tokenizers["auto"], messages)
    assert render_prompt(tokenizers["chatml"], messages[:-1]) == render_prompt(tokenizers["auto"], messages[:-1])


def test_gemma_template_folds_system_into_first_user_turn(tokenizers):
    rendered = render_text(tokenizers["gemma"], CONVERSATION[:3])
    assert rendered == ("<bos><start_of_turn>user\nYou are brief.\n\nWhat is 2+2?<end_of_turn>\n"
                        "<start_of_turn>model\n4.<end_of_turn>\n")


def test_llama3_prompt_ends_with_assistant_header(tokenizers):
    prompt = render_prompt(tokenizers["llama3"], CONVERSATION[:2])
    assert prompt.endswith("What is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


@pytest.mark.parametrize("template", ["auto", "llama3", "gemma"])
def test_end_of_turn_text(tokenizers, template):
    assert end_of_turn_text(tokenizers[template]) == END_OF_TURN[template]


def test_auto_without_template_tells_which_setting_to_use(smol_tokenizer):
    bare = copy.deepcopy(smol_tokenizer)
    bare.chat_template = None
    with pytest.raises(ChatTemplateError, match=r"data.chat_template=chatml\|llama3\|gemma"):
        ensure_chat_template(bare, "auto")
    with pytest.raises(ChatTemplateError, match="no chat template"):
        tokenize_conversation(bare, CONVERSATION)


def test_unknown_template_name(smol_tokenizer):
    with pytest.raises(ChatTemplateError, match="'vicuna' is unknown"):
        ensure_chat_template(copy.deepcopy(smol_tokenizer), "vicuna")


def test_truncation_that_removes_every_answer_token_warns(tokenizers):
    tokenizer = tokenizers["auto"]
    with pytest.warns(UserWarning, match="'x1' has no trainable token"):
        encoded = tokenize_conversation(tokenizer, CONVERSATION, max_length=10, example_id="x1")
    assert len(encoded["input_ids"]) == 10 and not any(encoded["assistant_masks"])


def test_render_prompt_refuses_a_finished_conversation_and_split_prompt(tokenizers):
    with pytest.raises(ValueError, match="split_prompt"):
        render_prompt(tokenizers["auto"], CONVERSATION)
    prompt, answer = split_prompt(CONVERSATION)
    assert prompt == CONVERSATION[:-1] and answer == "6, since 3+3=6."
