"""The pieces of the evaluation stage; :mod:`labkit.evaluate` puts them together.

- :mod:`.items`      held-out items per category, the seeded subset, gold answers from each row's reference;
- :mod:`.modelload`  base and base + adapter models for evaluation, with the run's chat template;
- :mod:`.scoring`    per-example scores for each category (which metric, which field, which direction);
- :mod:`.perplexity` perplexity over trained (assistant) tokens only;
- :mod:`.aggregate`  bootstrap 95% intervals and the paired base-vs-tuned comparison;
- :mod:`.report`     the table, best / worst examples and the verdict in plain words.
"""
