"""The verdict in plain words: did fine-tuning help, by how much, how sure, and what it cost.

"Helped" / "hurt" need the 95% interval of the paired difference (tuned - base, same items) to exclude
zero; otherwise the words are "no evidence either way". Whether the two models' own intervals overlap is
reported too, because that is what a reader sees in the plot (overlapping intervals can still hide a real
paired difference, so the paired test decides).
"""

from __future__ import annotations

from collections.abc import Mapping

from labkit.eval.items import MC_CATEGORY
from labkit.eval.scoring import Metric, metrics_for, primary_metric, scored_as
from labkit.eval.tables import fmt_change, fmt_interval, fmt_p

SMALL_N = 30
TRUSTED_JUDGE_PARAMS = 1_000_000_000
OUTCOME_WORDS = {"better": "helped", "worse": "hurt", "unclear": "no evidence either way"}
NOT_TASKS = (MC_CATEGORY, "judge")


def _stats(summary: Mapping, tag: str, category: str, metric: Metric) -> Mapping | None:
    return summary.get("results", {}).get(tag, {}).get(category, {}).get("metrics", {}).get(metric.name)


def _pretty(category: str) -> str:
    from labkit.eval.suites.registry import label_of

    return label_of(category)


def is_knowledge(category: str) -> bool:
    """Multiple-choice categories (the demo's mc_knowledge, hub benchmarks, custom files) measure what fine-tuning
    may cost in general knowledge; they are not tasks the fine-tune is meant to improve."""
    return scored_as(category) == MC_CATEGORY


def _overlap_words(a: Mapping, b: Mapping) -> str:
    apart = a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"]
    return "the two intervals do not overlap" if apart else "the two intervals overlap"


def comparison_line(summary: Mapping, category: str, metric: Metric) -> str | None:
    """'- function calling, full-call accuracy: base ... -> tuned ...; change ... (paired p ...): helped; ...'."""
    base, tuned = _stats(summary, "base", category, metric), _stats(summary, "tuned", category, metric)
    paired = summary.get("comparison", {}).get(category, {}).get(metric.name)
    if not (base and tuned and paired) or base.get("mean") is None or tuned.get("mean") is None:
        return None
    direction = "" if metric.higher_is_better else " (lower is better)"
    return (f"- {_pretty(category)}, {metric.label}{direction}: base {fmt_interval(base, metric)} -> tuned "
            f"{fmt_interval(tuned, metric)}; change {fmt_change(paired, metric)}, paired p {fmt_p(paired['p_value'])}"
            f": {OUTCOME_WORDS[paired['outcome']]}; {_overlap_words(base, tuned)}.")


def _headline(outcomes: Mapping[str, str]) -> str:
    groups = {word: [_pretty(c) for c, o in outcomes.items() if o == key] for key, word in
              (("better", "helped"), ("unclear", "unclear"), ("worse", "hurt"))}
    parts = []
    if groups["helped"]:
        parts.append(f"Fine-tuning helped on {len(groups['helped'])} of {len(outcomes)} tasks "
                     f"({', '.join(groups['helped'])})")
    else:
        parts.append(f"Fine-tuning did not measurably help on any of the {len(outcomes)} tasks")
    if groups["hurt"]:
        parts.append(f"it made {', '.join(groups['hurt'])} worse")
    if groups["unclear"]:
        parts.append(f"there is no evidence either way on {', '.join(groups['unclear'])}")
    return "; ".join(parts) + " (95% intervals of the paired difference, tuned minus base, on the same items)."


def suite_knowledge_line(summary: Mapping, category: str) -> str | None:
    """'ARC-Challenge: 67.0% -> 51.0% (acc_norm): fine-tuning cost 16.0 points of general knowledge (...)'."""
    metric = primary_metric(category)
    paired = summary.get("comparison", {}).get(category, {}).get(metric.name)
    base, tuned = _stats(summary, "base", category, metric), _stats(summary, "tuned", category, metric)
    if not (paired and base and tuned):
        return None
    points = 100 * abs(paired["mean_diff"])
    head = f"{_pretty(category)}: {100 * base['mean']:.1f}% -> {100 * tuned['mean']:.1f}% ({metric.label})"
    if paired["outcome"] == "worse":
        words = f"fine-tuning cost {points:.1f} points of general knowledge"
    elif paired["outcome"] == "better":
        words = f"general knowledge went up {points:.1f} points"
    else:
        words = "no measurable change in general knowledge (the interval of the change includes zero)"
    return (f"{head}: {words} (change {fmt_change(paired, metric)}, paired p {fmt_p(paired['p_value'])}, "
            f"n={paired.get('n', base.get('n'))}).")


def knowledge_line(summary: Mapping) -> str:
    suites = [line for category in sorted(summary.get("comparison", {}))
              if category != MC_CATEGORY and is_knowledge(category)
              for line in [suite_knowledge_line(summary, category)] if line]
    demo = demo_knowledge_line(summary) if MC_CATEGORY in summary.get("comparison", {}) or not suites else None
    return "\n".join(([demo] if demo else []) + suites)


def demo_knowledge_line(summary: Mapping) -> str:
    metric = primary_metric(MC_CATEGORY)
    paired = summary.get("comparison", {}).get(MC_CATEGORY, {}).get(metric.name)
    if not paired:
        return "General knowledge (multiple choice) was not measured for both models, so its cost is unknown."
    change = fmt_change(paired, metric)
    if paired["outcome"] == "worse":
        cost = f"fine-tuning cost general knowledge: {change}"
    elif paired["outcome"] == "better":
        cost = f"general knowledge went up: {change}"
    else:
        cost = f"no measurable loss of general knowledge: {change}, an interval that includes zero"
    base, tuned = _stats(summary, "base", MC_CATEGORY, metric), _stats(summary, "tuned", MC_CATEGORY, metric)
    return (f"Cost: {cost} ({metric.label}, base {fmt_interval(base, metric)} -> tuned "
            f"{fmt_interval(tuned, metric)}, paired p {fmt_p(paired['p_value'])}).")


def judge_line(summary: Mapping) -> str:
    judge = summary.get("judge")
    if not judge or judge.get("skipped"):
        reason = (judge or {}).get("skipped") or "eval.judge_model is not set"
        return f"No LLM judge was used ({reason}); the verdict rests on the reference-based metrics above."
    params = judge.get("params")
    scores = comparison_line(summary, "judge", primary_metric("judge"))
    scores = f"\n{scores}" if scores else ""
    failed = {tag: k for tag, k in (judge.get("parse_failures") or {}).items() if k}
    if failed:
        scores += ("\nThe judge gave no readable grade for " +
                   ", ".join(f"{k} {tag} replies" for tag, k in failed.items()) + " (left out of its scores).")
    if params is not None and params < TRUSTED_JUDGE_PARAMS:
        return (f"The judge {judge.get('model')!r} has only {params / 1e6:.0f}M parameters: a judge under 1B "
                f"parameters is too small to be trusted, so its scores are not evidence either way.{scores}")
    return (f"The judge {judge.get('model')!r} graded the general replies; judges have biases (length, style), so "
            f"read its grades next to the reference-based metrics, not instead of them.{scores}")


def base_only(summary: Mapping) -> list[str]:
    lines = ["Only the base model was evaluated (the run has no fine-tuned adapter), so there is no verdict on "
             "fine-tuning yet: run notebook 02 (or `labkit train`) and evaluate again. Base model scores:"]
    for category, result in sorted(summary.get("results", {}).get("base", {}).items()):
        metric = primary_metric(category)
        stats = result.get("metrics", {}).get(metric.name)
        if stats:
            lines.append(f"- {_pretty(category)}, {metric.label}: {fmt_interval(stats, metric)} (n={result['n']})")
    return lines


def verdict(summary: Mapping) -> str:
    """Plain words on what fine-tuning did, from a summary written by :func:`labkit.eval.evaluate.run_evaluation`."""
    results = summary.get("results", {})
    if "tuned" not in results:
        return "\n".join(base_only(summary) + [judge_line(summary)])
    tasks = [c for c in sorted(results["tuned"]) if c not in NOT_TASKS and not is_knowledge(c)
             and c in summary.get("comparison", {})]
    outcomes = {c: summary["comparison"][c][primary_metric(c).name]["outcome"] for c in tasks
                if primary_metric(c).name in summary["comparison"][c]}
    lines = [_headline(outcomes) if outcomes else "No task was scored for both models."]
    lines += [line for c in tasks for line in [comparison_line(summary, c, primary_metric(c))] if line]
    for category in tasks:  # secondary metrics that tell a different story than the main one
        for metric in metrics_for(category)[1:]:
            if metric.name == "perplexity":
                line = comparison_line(summary, category, metric)
                if line:
                    lines.append(line)
    lines.append(knowledge_line(summary))
    sizes = [r["n"] for r in results["tuned"].values()]
    if sizes and min(sizes) < SMALL_N:
        lines.append(f"Caution: as few as {min(sizes)} items per category; intervals this wide can hide real "
                     "differences. Raise eval.limit for a firmer answer.")
    lines.append(judge_line(summary))
    return "\n".join(lines)
