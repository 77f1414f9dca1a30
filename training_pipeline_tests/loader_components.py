"""A component for the project loader's tests only, independent of the product's."""

from __future__ import annotations

from typing import ClassVar, Literal

import dagster as dg
from pydantic import model_validator

from training_pipeline.components.base import ProjectComponent, current_settings
from training_pipeline.components.errors import FieldError

TYPE = "loader_components.Widget"


class Parts(dg.Resolvable, dg.Model):
    count: int = 1


class Widget(ProjectComponent):
    namespace: ClassVar[str] = "widget"

    name: str
    colour: Literal["red", "blue"] = "red"
    size: int = 1
    parts: Parts = Parts()

    @model_validator(mode="after")
    def _fits(self) -> Widget:
        if self.size > 10:
            raise FieldError("size", f"{self.size} is too big", "1 to 10")
        return self

    def build_project_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        if self.colour == "blue" and self.size == 7:
            raise FieldError("size", "7 blue widgets cannot be built", "any size but 7 in blue")
        spec = dg.AssetSpec(
            ["widgets", self.name],
            description=f"{self.size} {self.colour} in {current_settings().data_dir}",
        )
        return dg.Definitions(assets=[spec])
