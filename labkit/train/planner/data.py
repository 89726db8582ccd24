"""How many tokens a run trains on: from notebook 01's statistics when the run has them, else an estimate."""

from __future__ import annotations

import json
from dataclasses import dataclass

from labkit.config import Config, project_data_dir
from labkit.runs import read_json, runs_root

# FineTome-100k rows rendered with the Llama 3 template: about 8M tokens for 20k rows (README, presets table).
HUB_TOKENS_PER_ROW = 400
CHARS_PER_TOKEN = 3.8      # English text and JSON in BPE vocabularies
TURN_TOKENS = 5            # chat-template tokens around each turn
ROW_TOKENS = 10            # and around a row
# (On the cpu-demo data this gives a mean of 152 and a p90 of 280 tokens; SmolLM2's tokenizer: 155 and 276.)
# Share of a hub row's tokens that carry loss (the assistant turns) when no statistics say: a guess for multi-turn
# chat data like FineTome; it sizes only the CPU path's loss (labkit.train.head), a small part of the peak.
HUB_TRAINED_SHARE = 0.5
ASSISTANT_ROLES = ("gpt", "assistant")


@dataclass(frozen=True)
class DataSize:
    rows: int | None          # training rows (after splits); None when unknown (hub data without data.limit)
    mean_tokens: float        # tokens a row, before truncation to data.max_seq_length
    p90_tokens: float         # a micro-batch's padded length is about its longest row: p90 of the rows
    eval_p90_tokens: float    # the same for validation rows (the evaluation's batches)
    source: str               # where the numbers came from
    val_rows: int | None = None   # validation rows
    trained_share: float = HUB_TRAINED_SHARE   # tokens that carry loss / all tokens (notebook 01's trainable_share)
    eval_trained_share: float = HUB_TRAINED_SHARE   # the same for the validation rows


def _project_rows(name: str) -> list[tuple[int, int]]:
    """Approximate (tokens, trained tokens) of a shipped dataset's rows (characters of the turns / 3.8 + the
    template; trained: the assistant turns' characters / 3.8)."""
    rows = []
    for line in (project_data_dir() / name / "train.jsonl").read_text().splitlines():
        if line.strip():
            turns = json.loads(line).get("conversations") or []
            text = sum(len(str(turn.get("value", ""))) for turn in turns)
            answer = sum(len(str(turn.get("value", ""))) for turn in turns if turn.get("from") in ASSISTANT_ROLES)
            rows.append((int(text / CHARS_PER_TOKEN) + TURN_TOKENS * len(turns) + ROW_TOKENS,
                         int(answer / CHARS_PER_TOKEN)))
    return rows


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else 0.0


def estimate_data(cfg: Config) -> DataSize:
    """Rows and token lengths from the sources alone (no tokenizer: characters / 4 for the project's data)."""
    d = cfg.data
    lengths: list[float] = []
    trained: list[float] = []
    rows_known = True
    rows = 0
    for source in d.sources:
        if source.startswith("project:"):
            own = _project_rows(source.split(":", 1)[1])
            take = min(len(own), d.limit or len(own))
            picked = sorted(own)[:: max(1, len(own) // max(1, take))][:take]
            lengths += [total for total, _ in picked]
            trained += [answer for _, answer in picked]
            rows += take
        elif d.limit:
            lengths += [HUB_TOKENS_PER_ROW] * d.limit
            trained += [HUB_TOKENS_PER_ROW * HUB_TRAINED_SHARE] * d.limit
            rows += int(d.limit * (1 - d.test_fraction))
        else:
            rows_known = False
    train_rows = int(rows * (1 - d.val_fraction)) if rows_known else None
    val_rows = round(rows * d.val_fraction) if rows_known else None
    mean = sum(lengths) / len(lengths) if lengths else HUB_TOKENS_PER_ROW
    hub_only = all(not s.startswith("project:") for s in d.sources)
    p90 = 2.5 * mean if hub_only else _percentile(lengths, 0.9)  # FineTome's lengths spread far (a guess)
    share = sum(trained) / sum(lengths) if trained and sum(lengths) else HUB_TRAINED_SHARE
    return DataSize(train_rows, mean, p90, p90, "estimate (no notebook-01 statistics for this run)", val_rows,
                    share, share)


def run_data(cfg: Config, run: str | None) -> DataSize:
    """Notebook 01's statistics of ``run`` (``runs/<run>/data/stats.json``) when present and made with the same
    data.max_seq_length, else :func:`estimate_data`."""
    path = runs_root() / run / "data" / "stats.json" if run else None
    if path is None or not path.exists():
        return estimate_data(cfg)
    stats = read_json(path)
    if stats.get("sources") != list(cfg.data.sources) or stats.get("max_seq_length") != cfg.data.max_seq_length:
        estimate = estimate_data(cfg)  # the run's data were prepared with other settings: they do not apply
        return DataSize(**{**estimate.__dict__, "source": estimate.source.replace(
            "no notebook-01 statistics for this run", f"run {run!r} was prepared with other data settings")})
    train, val = stats["splits"]["train"], stats["splits"].get("validation", {})
    tokens = train.get("tokens", {})
    if not train.get("rows") or "mean" not in tokens:
        return estimate_data(cfg)
    val_tokens = val.get("tokens", {})
    share = float(train.get("trainable_share") or HUB_TRAINED_SHARE)
    return DataSize(int(train["rows"]), float(tokens["mean"]), float(tokens.get("p90", tokens["mean"])),
                    float(val_tokens.get("p90", tokens.get("p90", tokens["mean"]))), f"notebook 01 statistics ({path})",
                    val.get("rows"), share, float(val.get("trainable_share") or share))
