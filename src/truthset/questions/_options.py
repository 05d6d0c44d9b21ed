"""Option lists shared by the `label` and `labels` question types."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=200)
    label: str = Field("", max_length=200, description="Shown to the annotator; defaults to value.")
    hotkey: str | None = Field(None, min_length=1, max_length=1)


def parse_options(options: list[Any]) -> list[Option]:
    """Accept plain strings or option objects; reject duplicate values."""
    parsed = [Option(value=o) if isinstance(o, str) else Option.model_validate(o) for o in options]
    values = [o.value for o in parsed]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"duplicate option values: {', '.join(duplicates)}")
    return parsed


class OptionsMixin(BaseModel):
    options: list[Option] = Field(min_length=2, max_length=500)

    @field_validator("options", mode="before")
    @classmethod
    def _parse(cls, options: Any) -> Any:
        if isinstance(options, list):
            return parse_options(options)
        return options

    def option_values(self) -> list[str]:
        return [o.value for o in self.options]
