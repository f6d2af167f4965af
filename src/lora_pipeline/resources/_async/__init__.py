"""Async twins of the resources (generated)."""
