"""Looking at the data: a conversation with its loss mask, token-length statistics and histograms."""

from __future__ import annotations

import html
from itertools import groupby
from typing import Any

import numpy as np

from labkit.data.render import tokenize_conversation

TRAINED_OPEN, TRAINED_CLOSE = "⟦", "⟧"


def _messages(example: dict | list) -> list[dict]:
    return example["messages"] if isinstance(example, dict) else example


def mask_runs(tokenizer: Any, example: dict | list, max_length: int | None = None) -> tuple[list[tuple[str, bool]], int, int]:
    """The rendered text as (text, trained) runs, plus the trained and total token counts."""
    encoded = tokenize_conversation(tokenizer, _messages(example), max_length=max_length, warn=False)
    pairs = list(zip(encoded["input_ids"], encoded["assistant_masks"]))
    runs = [(tokenizer.decode([i for i, _ in group], clean_up_tokenization_spaces=False), bool(trained))
            for trained, group in ((k, list(g)) for k, g in groupby(pairs, key=lambda p: p[1]))]
    return runs, sum(encoded["assistant_masks"]), len(encoded["input_ids"])


def _share_line(trained: int, total: int) -> str:
    share = trained / total if total else 0.0
    return f"{trained} of {total} tokens trained ({share:.0%})"


def show_masked_example(tokenizer: Any, example: dict | list, max_length: int | None = None) -> str:
    """The conversation as the model sees it, trained tokens inside ⟦ ⟧ and masked tokens left plain."""
    runs, trained, total = mask_runs(tokenizer, example, max_length)
    body = "".join(f"{TRAINED_OPEN}{text}{TRAINED_CLOSE}" if is_trained else text for text, is_trained in runs)
    legend = f"{TRAINED_OPEN}trained{TRAINED_CLOSE}, the rest is masked (no loss). {_share_line(trained, total)}"
    return f"{legend}\n{'-' * 60}\n{body}"


def masked_example_html(tokenizer: Any, example: dict | list, max_length: int | None = None) -> str:
    """The same as :func:`show_masked_example` as HTML: masked text grey, trained text highlighted green."""
    runs, trained, total = mask_runs(tokenizer, example, max_length)
    spans = []
    for text, is_trained in runs:
        style = "background:#c8f7c5;color:#000" if is_trained else "color:#999"
        spans.append(f'<span style="{style}">{html.escape(text)}</span>')
    return (f"<div><b>{_share_line(trained, total)}</b> — <span style='background:#c8f7c5'>trained</span>, "
            f"<span style='color:#999'>masked</span>"
            f"<pre style='white-space:pre-wrap'>{''.join(spans)}</pre></div>")


def length_stats(lengths: list[int], max_length: int | None = None) -> dict:
    """Count, mean, percentiles and max of token lengths, and the share longer than ``max_length``."""
    if not lengths:
        return {"count": 0}
    values = np.asarray(lengths)
    stats = {"count": int(values.size), "mean": round(float(values.mean()), 1), "min": int(values.min()),
             **{f"p{q}": int(np.percentile(values, q)) for q in (50, 90, 95, 99)}, "max": int(values.max())}
    if max_length is not None:
        stats["truncation_rate"] = round(float((values > max_length).mean()), 4)
    return stats


def plot_length_histograms(lengths_by_category: dict[str, list[int]], max_length: int, title: str = ""):
    """One histogram of token lengths per category, with the max length and the truncation rate marked."""
    import matplotlib.pyplot as plt

    names = sorted(lengths_by_category)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.8 * len(names) + 0.6), sharex=True, squeeze=False)
    top = max([max(v) for v in lengths_by_category.values() if v] + [max_length])
    bins = np.linspace(0, top, 40)
    for axis, name in zip(axes[:, 0], names):
        values = lengths_by_category[name]
        cut = sum(v > max_length for v in values) / len(values) if values else 0.0
        axis.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        axis.axvline(max_length, color="tab:red", linestyle="--")
        axis.set_ylabel("rows")
        axis.set_title(f"{name}: {len(values)} rows, {cut:.1%} longer than max_seq_length={max_length}",
                       fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("tokens per conversation (rendered with the chat template)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ tables for the notebook

def sources_table(sources: list):
    """One line per loaded source: rows read for training and whether it ships a test split."""
    import pandas as pd

    return pd.DataFrame([{"source": s.name, "train rows": len(s.train),
                          "test rows": "carved out" if s.test is None else len(s.test)} for s in sources])


def validation_table(report: dict):
    """Rows read, kept and dropped per source, with the problems found."""
    import pandas as pd

    return pd.DataFrame([{"source": r["source"], "schema": r.get("schema"), "rows": r["rows"], "kept": r["kept"],
                          "dropped": r["dropped"], "problems": r["problems"] or "-"} for r in report["sources"]])


def counts_table(stats: dict):
    """Rows per category (and in total) of each split."""
    import pandas as pd

    splits = stats["splits"]
    table = pd.DataFrame({name: part["by_category"] for name, part in splits.items()}).fillna(0).astype(int)
    table.loc["total"] = table.sum()
    return table


def tokens_table(stats: dict):
    """Token-length percentiles, truncation rate at data.max_seq_length and the trained share, per split."""
    import pandas as pd

    rows = {name: {**part["tokens"], "trainable_share": part["trainable_share"]}
            for name, part in stats["splits"].items()}
    return pd.DataFrame(rows).T
