"""labkit: fine-tune small chat LLMs with LoRA / QLoRA and judge honestly whether it helped.

The notebooks in ``notebooks/`` import this package; everything reusable lives here so that the
notebooks read as a narrative.

Map (stage -> package -> notebook; the README's Layout section says more):
    data preparation -> labkit.data     -> 01_data_prep
    training         -> labkit.train    -> 02_sft_training
    inference        -> labkit.infer    -> 03_inference
    evaluation       -> labkit.eval     -> 04_evaluation
    analysis         -> labkit.analysis -> 05_analysis
    export           -> labkit.export   -> after 02 (``labkit export``)
Foundations below every stage: labkit.config, runs, env, models, templates, distributed, notebook.
"""

__version__ = "0.1.0"
