"""Data preparation: load, standardise to chat ``messages``, validate, filter, split, render and mask.

The training, inference and evaluation stages use :func:`load_prepared`, :func:`ensure_chat_template`,
:func:`tokenize_conversation`, :func:`render_prompt` and :func:`split_prompt`.
"""

from labkit.data.display import (counts_table, length_stats, masked_example_html, plot_length_histograms,
                                 show_masked_example, sources_table, tokens_table,
                                 validation_table)
from labkit.data.filters import dedupe, filter_min_score, filter_token_length
from labkit.data.loaders import SourceError, project_data_dir, read_local, read_source
from labkit.data.prepare import (PreparedDataMissing, build_splits, compute_stats, lengths_by_category,
                                 load_lengths, load_prepared, load_sources, load_stats, prepare_data,
                                 run_prepare, save_prepared, standardise_sources)
from labkit.data.problems import DataValidationError, RowProblem
from labkit.data.render import (end_of_turn_text, end_of_turn_token_id, render_prompt, render_text,
                                split_prompt, tokenize_conversation)
from labkit.data.schemas import SchemaError, detect_schema
from labkit.data.split import split_rows
from labkit.data.standardise import standardise_row
from labkit.templates import TEMPLATES, ChatTemplateError, ensure_chat_template
from labkit.data.validate import check_rows, row_problems

__all__ = [
    "counts_table", "tokens_table", "sources_table", "validation_table", "run_prepare", "ChatTemplateError", "DataValidationError", "PreparedDataMissing", "RowProblem", "SchemaError", "SourceError",
    "TEMPLATES", "build_splits", "check_rows", "compute_stats", "dedupe", "detect_schema", "end_of_turn_text",
    "end_of_turn_token_id", "ensure_chat_template", "filter_min_score", "filter_token_length", "length_stats",
    "lengths_by_category", "load_lengths", "load_prepared", "load_sources", "load_stats", "masked_example_html",
    "plot_length_histograms", "prepare_data", "project_data_dir", "read_local", "read_source", "render_prompt",
    "render_text", "row_problems", "save_prepared", "show_masked_example", "split_prompt", "split_rows",
    "standardise_row", "standardise_sources", "tokenize_conversation",
]
