"""Tools the model can call, and the loop that runs them (notebook 03, the chat app, ``labkit tools``).

- :mod:`labkit.infer.tools.registry`: :class:`Tool` (a function plus its JSON schema), :class:`ToolRegistry`
  (validation with jsonschema, a time limit per call), the training rows' system-prompt format.
- built-ins: ``calculate``, ``convert_units``, ``get_current_time``, ``search_documents``, ``web_search``
  (off by default); :func:`make_registry` picks some of them.
- :mod:`labkit.infer.tools.loop`: :func:`tool_steps` / :func:`run_with_tools` around any ``generate(messages)``.
"""

from labkit.infer.tools.builtins import ALL_TOOLS, OFFLINE_TOOLS, default_registry, make_registry
from labkit.infer.tools.loop import (DEFAULT_MAX_CALLS, Step, ToolTurn, has_tool_role, model_generate, run_with_tools,
                               tool_message, tool_steps)
from labkit.infer.tools.registry import Tool, ToolError, ToolRegistry, ToolResult
from labkit.infer.tools.web import WebSearch

__all__ = ["ALL_TOOLS", "DEFAULT_MAX_CALLS", "OFFLINE_TOOLS", "Step", "Tool", "ToolError", "ToolRegistry",
           "ToolResult", "ToolTurn", "WebSearch", "default_registry", "has_tool_role", "make_registry",
           "model_generate", "run_with_tools", "tool_message", "tool_steps"]
