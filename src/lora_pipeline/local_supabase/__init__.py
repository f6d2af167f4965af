"""The embedded Supabase-compatible stack (PostgreSQL + gateway) for tests, demos and notebooks.

Needs the ``local`` extra: ``pip install 'lora-pipeline[local]'``.
"""

from .stack import LocalSupabase, LocalUser

__all__ = ["LocalSupabase", "LocalUser"]
