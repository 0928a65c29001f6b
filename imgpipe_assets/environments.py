"""Which implementation of each resource an environment uses.

``local`` (the default) needs no account and no network: local files, the offline
segmenter, a dry-run Shopify outbox and SQLite (or any IMGPIPE_DATABASE_URL).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.fetch import ImageFetcher
from imgpipe_resources.jms.client import JmsClient
from imgpipe_resources.jms.settings import JmsSettings
from imgpipe_resources.publishing import ShopifyOutbox
from imgpipe_resources.segmentation import LocalSegmenter
from imgpipe_resources.settings import Settings
from imgpipe_resources.storage import LocalObjectStore
from imgpipe_resources.themes import ThemeLibrary


def resources_for(settings: Settings) -> dict[str, Any]:
    jms = JmsSettings.from_env()
    return {
        "db": JobsDatabase(url=settings.database_url),
        "storage": LocalObjectStore(root=str(settings.home)),
        "segmenter": LocalSegmenter(models_dir=str(settings.models_dir)),
        "publisher": ShopifyOutbox(outbox_dir=str(settings.home / "outbox")),
        "themes": ThemeLibrary(path=str(settings.themes_path)),
        "fetcher": ImageFetcher(allowed_hosts=list(jms.allowed_image_hosts)),
        "jms": JmsClient(
            base_url=jms.base_url,
            images_path=jms.images_path,
            # A secret stays an environment reference: the UI shows its name, never its value.
            api_token=dg.EnvVar("JMS_API_TOKEN") if jms.api_token else None,
        ),
    }
