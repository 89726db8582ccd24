"""labkit: fine-tune small chat LLMs with LoRA / QLoRA and judge honestly whether it helped.

The notebooks in ``notebooks/`` import this package; everything reusable lives here so that the
notebooks read as a narrative.
"""

__version__ = "0.1.0"
