"""Typed models at the edges: one pydantic model per concept."""
