"""``python -m lora_pipeline`` runs the CLI."""

from .cli import main

main()
