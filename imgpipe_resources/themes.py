"""The theme file as a resource, read when a run starts."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from imgpipe_assets.themes import Theme, get_theme, load_themes


class ThemeLibrary(dg.ConfigurableResource):
    """Themes from the YAML file users edit (IMGPIPE_THEMES)."""

    path: str = Field(description="Path of the theme file")

    def all(self) -> dict[str, Theme]:
        return load_themes(Path(self.path))

    def get(self, name: str) -> Theme:
        return get_theme(self.all(), name)
