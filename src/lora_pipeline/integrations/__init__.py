"""Integrations with training frameworks. Each module imports its framework itself; this package imports none.

- :mod:`lora_pipeline.integrations.transformers`: ``LoraPipelineCallback`` for the Hugging Face ``Trainer``.
"""
