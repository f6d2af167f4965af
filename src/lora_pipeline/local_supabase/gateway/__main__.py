"""``python -m lora_pipeline.local_supabase.gateway CONFIG_JSON``: serve the gateway in this process."""

import sys
from pathlib import Path

from .server import serve_forever

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lora_pipeline.local_supabase.gateway CONFIG_JSON")
    serve_forever(Path(sys.argv[1]))
