"""Side-by-side answers of several models to the same prompts (notebook 03), saved to the run folder."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from labkit.infer.generate import Sampling, generate_chat
from labkit.runs import Run, write_jsonl

SIDE_BY_SIDE = ("inference", "side_by_side.jsonl")
FALLBACK_PROMPTS = [
    [{"role": "user", "content": "What is 17 plus 25? Answer with the number."}],
    [{"role": "user", "content": "Give me three tips for writing a clear email."}],
    [{"role": "system", "content": "Answer from the text only."},
     {"role": "user", "content": "Text: The Orla bridge opened in 1931 and is 212 metres long.\n"
                                 "Question: When did the Orla bridge open?"}],
]


def example_conversations(run: Run, per_category: int = 1) -> list:
    """The first ``per_category`` test rows of each category of the run's prepared data; a few fixed prompts
    (with a printed note) when the run has no prepared data yet."""
    from labkit.data.prepare import load_prepared

    try:
        rows = load_prepared(run, "test")
    except FileNotFoundError as err:
        print(f"labkit: {err}. Using {len(FALLBACK_PROMPTS)} fixed prompts instead.")
        return list(FALLBACK_PROMPTS)
    picked: dict[str, list] = {}
    for row in rows:
        group = picked.setdefault(row.get("category") or "uncategorised", [])
        if len(group) < per_category:
            group.append(row)
    return [row for group in picked.values() for row in group]


def prompt_and_reference(item: Sequence[Mapping] | Mapping) -> tuple[list[dict], str | None]:
    """A conversation to answer and its reference answer (if any).

    ``item`` is either a list of ``{role, content}`` messages, or a prepared row (``{"messages": ...,
    "reference": ...}``) whose last assistant turn is the reference and is removed from the prompt.
    """
    if isinstance(item, Mapping):
        messages = list(item.get("messages") or [])
        if not messages:
            raise ValueError(f"row {item.get('id', '<no id>')!r} has no 'messages'")
        if messages[-1].get("role") == "assistant":
            return messages[:-1], item.get("reference") or messages[-1]["content"]
        return messages, item.get("reference")
    messages = list(item)
    if not messages or messages[-1].get("role") != "user":
        raise ValueError(f"a conversation to answer must end with a user turn, got {messages[-1:] or 'nothing'}")
    return messages, None


def side_by_side(models: Mapping[str, tuple[Any, Any]], conversations: Sequence, sampling: Sampling | None = None,
                 batch_size: int = 8, width: int | None = None):
    """A DataFrame with one row per conversation: ``prompt`` (the last user turn), ``reference`` when the
    items carry one, and one column of replies per model (greedy by default, generated in batches).

    ``width`` shortens every text cell to that many characters (for display; the saved table is kept whole).
    """
    import pandas as pd

    pairs = [prompt_and_reference(item) for item in conversations]
    prompts = [p for p, _ in pairs]
    table: dict[str, list] = {"prompt": [p[-1]["content"] for p in prompts]}
    if any(ref is not None for _, ref in pairs):
        table["reference"] = [ref for _, ref in pairs]
    for name, (model, tokenizer) in models.items():
        table[name] = generate_chat(model, tokenizer, prompts, sampling or Sampling(), batch_size=batch_size)
    frame = pd.DataFrame(table)
    if width:
        frame = frame.map(lambda text: text if not isinstance(text, str) or len(text) <= width
                          else text[: width - 1] + "…")
    return frame


def save_side_by_side(frame, run: Run, sampling: Sampling | None = None) -> str:
    """Write the table to ``run/inference/side_by_side.jsonl`` (one line per prompt); returns the path."""
    from dataclasses import asdict

    settings = asdict(sampling or Sampling())
    rows = [{**row, "sampling": settings} for row in frame.to_dict("records")]
    path = run.path(*SIDE_BY_SIDE)
    write_jsonl(path, rows)
    return str(path)
