"""Settings read from the environment when they are needed, never at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_THEMES = Path(__file__).resolve().parent.parent / "imgpipe_assets" / "themes.yaml"


def default_models_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "imgpipe" / "models"


@dataclass(frozen=True)
class Settings:
    """Where imgpipe keeps its data, its database and its weights."""

    home: Path
    database_url: str
    themes_path: Path
    models_dir: Path
    max_images_per_sku: int
    cleanup_days: int = 30
    cleanup_composites: bool = False
    backdrop_key: bool = True  # IMGPIPE_BACKDROP_KEY: key plain studio backdrops

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("IMGPIPE_HOME") or ".imgpipe").expanduser().absolute()
        database_url = env.get("IMGPIPE_DATABASE_URL") or f"sqlite:///{home / 'imgpipe.db'}"
        themes = Path(env.get("IMGPIPE_THEMES") or PACKAGE_THEMES).expanduser()
        models = Path(env.get("IMGPIPE_MODELS_DIR") or default_models_dir(env)).expanduser()
        return cls(
            home=home,
            database_url=database_url,
            themes_path=themes,
            models_dir=models,
            max_images_per_sku=int(env.get("MAX_IMAGES_PER_SKU") or 10),
            cleanup_days=int(env.get("JOB_CLEANUP_DAYS") or 30),
            cleanup_composites=(env.get("JOB_CLEANUP_COMPOSITES") or "").lower()
            in ("1", "true", "yes"),
            backdrop_key=(env.get("IMGPIPE_BACKDROP_KEY") or "1").lower()
            not in ("0", "false", "no"),
        )
