"""Chat generation with the training chat template: batched, streamed, and safe right after training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from tqdm.auto import tqdm


@dataclass
class Sampling:
    """Generation settings; temperature 0 means greedy decoding."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    min_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int = 0

    def generate_kwargs(self) -> dict:
        kwargs: dict = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty}
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
            if self.min_p:
                kwargs["min_p"] = self.min_p
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs


def prepare_for_generation(model):
    """Eval mode, KV cache on, gradient checkpointing off.

    A model left in training mode with gradient checkpointing produced garbage ("The-----...") when
    generating right after training; in eval mode with the cache on it answers properly.
    """
    if getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()
    model.eval()
    model.config.use_cache = True
    return model


def end_of_turn_ids(tokenizer, model=None) -> list[int]:
    """Token ids that end an assistant turn: the tokenizer's eos plus the model's generation-config eos."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


def _encode_prompts(tokenizer, conversations: list[list[dict]], device):
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)


def generate_chat(model, tokenizer, conversations: list[list[dict]], sampling: Sampling | None = None,
                  batch_size: int = 8, progress: bool = False, path: str = "auto") -> list[str]:
    """Answer each conversation (list of {role, content}); returns only the new text of each reply.

    ``path`` picks how (labkit.infer.fastgen): "auto" keeps today's padded batches on the CPU and picks a faster
    path on CUDA, printing which and why, and falls back to the padded batches if that path fails.
    """
    from labkit.infer.fastgen import announce, choose_path

    sampling = sampling or Sampling()
    prepare_for_generation(model)
    chosen = choose_path(model, sampling, path, prompts=len(conversations))
    if chosen.name == "transformers":
        return _generate_padded(model, tokenizer, conversations, sampling, batch_size, progress)
    announce(model, chosen)
    try:
        return _generate_fast(model, tokenizer, conversations, sampling, batch_size, progress, chosen.name)
    except Exception as err:  # noqa: BLE001 - any failure of an optional fast path falls back, said aloud
        if path != "auto":
            raise
        print(f"labkit: generation path '{chosen.name}' failed ({type(err).__name__}: {str(err)[:200]}); "
              "falling back to padded model.generate batches")
        return _generate_padded(model, tokenizer, conversations, sampling, batch_size, progress)


def _generate_padded(model, tokenizer, conversations, sampling: Sampling, batch_size: int, progress: bool):
    """Today's path: padded ``model.generate`` batches in the given order."""
    import torch

    device = next(model.parameters()).device
    stop = end_of_turn_ids(tokenizer, model)
    replies: list[str] = []
    batches = range(0, len(conversations), batch_size)
    for start in tqdm(batches, desc="generating", disable=not progress, unit="batch"):
        batch = _encode_prompts(tokenizer, conversations[start:start + batch_size], device)
        torch.manual_seed(sampling.seed + start)
        with torch.no_grad():
            output = model.generate(**batch, eos_token_id=stop, pad_token_id=tokenizer.pad_token_id,
                                    **sampling.generate_kwargs())
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        replies += [t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    return replies


def _generate_fast(model, tokenizer, conversations, sampling: Sampling, batch_size: int, progress: bool,
                   path: str) -> list[str]:
    """The CUDA paths of labkit.infer.fastgen: prompts sorted longest first, batches sized from free memory (or
    one continuous batch), replies returned in input order."""
    import torch

    from labkit.infer.fastgen import free_gpu_bytes, length_order, rows_for_memory

    device = next(model.parameters()).device
    prompts = [_prompt_ids(tokenizer, c) for c in conversations]
    if path == "continuous":
        return _generate_continuous(model, tokenizer, prompts, sampling, progress)
    if path == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
    extra = {"cache_implementation": "static"} if path == "static" else {}
    order = length_order([len(p) for p in prompts])
    if device.type == "cuda":   # the longest prompt comes first, so the first batch is the largest in memory
        batch_size = rows_for_memory(model, len(prompts[order[0]]) + sampling.max_new_tokens, free_gpu_bytes(device))
    stop = end_of_turn_ids(tokenizer, model)
    replies: list[str | None] = [None] * len(prompts)
    for start in tqdm(range(0, len(order), batch_size), desc="generating", disable=not progress, unit="batch"):
        picked = order[start:start + batch_size]
        batch = tokenizer.pad({"input_ids": [prompts[i] for i in picked]}, padding_side="left",
                              return_tensors="pt").to(device)
        torch.manual_seed(sampling.seed + start)
        with torch.no_grad():
            output = model.generate(**batch, eos_token_id=stop, pad_token_id=tokenizer.pad_token_id,
                                    **sampling.generate_kwargs(), **extra)
        texts = tokenizer.batch_decode(output[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        for i, text in zip(picked, texts):
            replies[i] = text.strip()
    return replies


def _generate_continuous(model, tokenizer, prompts: list[list[int]], sampling: Sampling, progress: bool):
    """transformers' continuous batching (greedy): finished rows leave, waiting prompts join."""
    from transformers import GenerationConfig
    from transformers.generation import ContinuousBatchingConfig

    from labkit.infer.fastgen import CONTINUOUS_SETTINGS

    config = GenerationConfig(max_new_tokens=sampling.max_new_tokens, do_sample=False,
                              repetition_penalty=sampling.repetition_penalty,
                              eos_token_id=end_of_turn_ids(tokenizer, model), pad_token_id=tokenizer.pad_token_id)
    results = list(model.generate_batch(prompts, generation_config=config, progress_bar=progress,
                                        continuous_batching_config=ContinuousBatchingConfig(**CONTINUOUS_SETTINGS)
                                        ).values())
    failed = [r.request_id for r in results if r.error is not None]
    if len(results) != len(prompts) or failed:
        raise RuntimeError(f"continuous batching returned {len(results)} of {len(prompts)} answers"
                           + (f"; failed: {failed[:5]}" if failed else ""))
    return [tokenizer.decode(r.generated_tokens, skip_special_tokens=True).strip() for r in results]


def _prompt_ids(tokenizer, conversation: list[dict]) -> list[int]:
    """The same prompt tokens ``_encode_prompts`` gives one conversation (chat template, no extra specials)."""
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


STREAM_TOKEN_TIMEOUT = 60.0  # seconds to wait for each new piece of a streamed reply before calling it stalled


class StreamError(RuntimeError):
    """A streamed reply failed (generation raised in its thread) or stalled; the message says which."""


def _stop_when_set(flag):
    """A stopping criterion that ends generation at the next token once ``flag`` (a threading.Event) is set."""
    import torch
    from transformers import StoppingCriteria

    class StopWhenSet(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), flag.is_set(), dtype=torch.bool, device=input_ids.device)

    return StopWhenSet()


def stream_chat(model, tokenizer, conversation: list[dict], sampling: Sampling | None = None,
                token_timeout: float | None = STREAM_TOKEN_TIMEOUT) -> Iterator[str]:
    """Yield the reply piece by piece as it is generated (for notebooks and the chat app).

    ``generate`` runs in a worker thread. If it raises, the pieces made so far are yielded and then
    :class:`StreamError` is raised here, with the worker's error as its cause; if no piece arrives within
    ``token_timeout`` seconds (None: wait forever), StreamError too, so a reader never waits forever. When the
    reader stops early (the chat's Stop button closes this generator), the worker stops at its next token and
    this generator returns once it has, so the model is free for the next reply.
    """
    from queue import Empty
    from threading import Event, Thread

    import torch
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    from labkit.infer.fastgen import choose_path, streaming_kwargs

    sampling = sampling or Sampling()
    prepare_for_generation(model)
    device = next(model.parameters()).device
    batch = _encode_prompts(tokenizer, [conversation], device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=token_timeout)
    stop, failures = Event(), []
    kwargs = dict(**batch, streamer=streamer, eos_token_id=end_of_turn_ids(tokenizer, model),
                  pad_token_id=tokenizer.pad_token_id, stopping_criteria=StoppingCriteriaList([_stop_when_set(stop)]),
                  **sampling.generate_kwargs(), **streaming_kwargs(model, choose_path(model, sampling, prompts=1)))

    def work() -> None:
        try:
            with torch.no_grad():
                model.generate(**kwargs)
        except BaseException as err:  # noqa: BLE001 - handed to the reader, which re-raises it
            failures.append(err)
            streamer.end()            # ends the reader's loop instead of leaving it waiting

    torch.manual_seed(sampling.seed)
    worker = Thread(target=work, daemon=True, name="labkit-stream")
    worker.start()
    stalled = False
    try:
        while True:
            try:
                piece = next(streamer)
            except StopIteration:
                break
            except Empty:
                stalled = True
                raise StreamError(f"no new token within {token_timeout:g} s: generation stalled or is too slow for "
                                  "this machine (pass a larger token_timeout to wait longer)") from None
            yield piece
    finally:
        stop.set()
        if not stalled:
            worker.join(token_timeout)
    if failures:
        err = failures[0]
        raise StreamError(f"generation failed: {type(err).__name__}: {err}") from err


def ask(model, tokenizer, prompt: str, system: str | None = None, sampling: Sampling | None = None) -> str:
    """One question, one greedy answer (convenience for notebooks and the CLI)."""
    conversation = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return generate_chat(model, tokenizer, [conversation], sampling)[0]
