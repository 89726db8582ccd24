"""Export: the adapter alone, a merged 16-bit model (streamed, shard by shard), GGUF files, parity checks, Hub.

Modules: :mod:`~labkit.export.merge` (streaming merge), :mod:`~labkit.export.to_gguf` (llama.cpp's converter),
:mod:`~labkit.export.parity` (greedy + perplexity comparison), :mod:`~labkit.export.resources` (disk/RAM
checks), :mod:`~labkit.export.hub` (push_to_hub), :mod:`~labkit.export.stage` (run_export).
"""

from labkit.export.errors import ExportError, HubUnavailable, NotEnoughResources, ParityFailed, UnsupportedAdapter
from labkit.export.hub import push_to_hub
from labkit.export.merge import merge_adapter
from labkit.export.stage import export_adapter, export_model, run_export, verify_gguf
from labkit.export.to_gguf import convert as convert_to_gguf

__all__ = ["ExportError", "HubUnavailable", "NotEnoughResources", "ParityFailed", "UnsupportedAdapter",
           "convert_to_gguf", "export_adapter", "export_model", "merge_adapter", "push_to_hub", "run_export",
           "verify_gguf"]
