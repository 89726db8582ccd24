"""Chat generation: stops at the end of the turn, returns only the new text, works right after training."""

import pytest
import torch

from labkit.infer.generate import Sampling, ask, end_of_turn_ids, generate_chat, prepare_for_generation, stream_chat

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def smol():
    from labkit.models import load_causal_lm, load_tokenizer

    return load_causal_lm("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")


@pytest.mark.smoke
def test_reply_stops_at_end_of_turn_and_holds_only_new_text(smol):
    model, tokenizer = smol
    reply = generate_chat(model, tokenizer, [QUESTION], Sampling(max_new_tokens=40))[0]
    assert reply == "The capital of France is Paris."  # no prompt echo, no <|im_end|>, nothing after it
    batch = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True)
    out = model.generate(**batch, max_new_tokens=40, do_sample=False, eos_token_id=end_of_turn_ids(tokenizer, model))
    new = out[0, batch["input_ids"].shape[1]:].tolist()
    assert new[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>") and len(new) < 40


@pytest.mark.smoke
def test_streamed_reply_equals_the_batched_one(smol):
    model, tokenizer = smol
    pieces = list(stream_chat(model, tokenizer, QUESTION, Sampling(max_new_tokens=40)))
    assert len(pieces) > 1
    assert "".join(pieces).strip() == ask(model, tokenizer, QUESTION[0]["content"], sampling=Sampling(max_new_tokens=40))


def test_generation_right_after_training_mode_with_checkpointing(tiny_model, smol_tokenizer):
    """A model left in train mode with gradient checkpointing must generate like the same model in eval mode."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in tiny_model.parameters():
            p.add_(torch.randn_like(p) * 0.2)  # a random tiny model that says more than blank lines
    conversations = [QUESTION, [{"role": "user", "content": "Name three colours."}]]
    expected = generate_chat(tiny_model, smol_tokenizer, conversations, Sampling(max_new_tokens=12))
    tiny_model.gradient_checkpointing_enable()
    tiny_model.train()
    tiny_model.config.use_cache = False
    again = generate_chat(tiny_model, smol_tokenizer, conversations, Sampling(max_new_tokens=12))
    assert again == expected
    assert not tiny_model.training and tiny_model.config.use_cache


def test_sampling_settings_reach_generate():
    greedy = Sampling().generate_kwargs()
    assert greedy["do_sample"] is False
    sampled = Sampling(temperature=0.7, top_p=0.9, min_p=0.1, repetition_penalty=1.1).generate_kwargs()
    assert sampled == {"max_new_tokens": 128, "repetition_penalty": 1.1, "do_sample": True, "temperature": 0.7,
                       "top_p": 0.9, "min_p": 0.1}


def test_prepare_for_generation_turns_checkpointing_off(tiny_model):
    tiny_model.gradient_checkpointing_enable()
    tiny_model.train()
    prepare_for_generation(tiny_model)
    assert not tiny_model.is_gradient_checkpointing and not tiny_model.training
