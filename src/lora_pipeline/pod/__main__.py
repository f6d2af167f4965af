"""``python -m lora_pipeline.pod run [--trainer lora|selftest]``."""

import sys

from .runtime import main

sys.exit(main())
