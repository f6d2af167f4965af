"""The lora-pipeline benchmark suite: ``python -m bench`` runs every benchmark and prints one table of figures,
each against a baseline measured in the same run; ``python -m bench.<name>`` runs one on its own."""
