"""The theme file as a resource, read when a run starts."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from imgpipe_assets.themes import Theme, get_theme, load_themes


class ThemeLibrary(dg.ConfigurableResource):
    """Themes from the YAML file users edit (IMGPIPE_THEMES).

    The file is parsed once per resource instance, i.e. once per run or sensor tick: a run
    over many partitions asks for its themes thousands of times, and an edit made while a
    run is going applies to the next run, never to half of this one.
    """

    path: str = Field(description="Path of the theme file")
    _themes: dict[str, Theme] | None = PrivateAttr(default=None)

    def all(self) -> dict[str, Theme]:
        if self._themes is None:
            self._themes = load_themes(Path(self.path))
        return dict(self._themes)

    def get(self, name: str) -> Theme:
        return get_theme(self.all(), name)
