"""The house model: tolerant of fields a newer server adds, strict about the ones we read."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base of every response model. Extra fields are kept (``model_extra``), never an error."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


__all__ = ["Model"]
