"""The real thing: `dagster dev` (webserver + daemon), the webhook receiver on a port, a
local image host. Signed webhooks go in; composites, outbox records and jobs rows come out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from imgpipe_assets.local_run import write_local_instance_config
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Job
from imgpipe_resources.jms.receiver import PATH
from imgpipe_resources.jms.signing import sign
from imgpipe_resources.settings import Settings
from tests.helpers import SMALL_THEMES, graphql, models_dir, wait_for_jobs
from tests.servers import Reply, serve

SECRET = "e2e-secret"
pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    themes = tmp_path / "themes.yaml"
    themes.write_text(SMALL_THEMES)
    # The instance the embedded default runs on: run limits per stage, imgpipe's event log.
    write_local_instance_config(tmp_path / "dagster")
    return {
        "IMGPIPE_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "IMGPIPE_THEMES": str(themes),
        "IMGPIPE_MODELS_DIR": str(models_dir()),
        "JMS_WEBHOOK_SECRET": SECRET,
        "JMS_ALLOWED_IMAGE_HOSTS": "localhost",
    }


def test_signed_webhooks_become_published_composites(
    env: dict[str, str], receiver: str, dagster_dev: str, sample_photos: dict
) -> None:
    photo = sample_photos["WATCH-0002"].read_bytes()
    broken = photo[: len(photo) // 3]
    settings = Settings.from_env(env)
    with serve(
        {
            "/watch.jpg": lambda q, h: Reply(200, photo),
            "/broken.jpg": lambda q, h: Reply(200, broken),
        }
    ) as images:
        for sku, path, data in (
            ("WATCH-E2E", "/watch.jpg", photo),
            ("BROKEN-E2E", "/broken.jpg", broken),
        ):
            body = json.dumps(
                {
                    "event": "image.created",
                    "sku": sku,
                    "imageUrl": images + path,
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            ).encode()
            response = httpx.post(receiver + PATH, content=body, headers=sign(body, SECRET))
            assert response.status_code == 202, response.text

        states = wait_for_jobs(
            settings.database_url,
            lambda states: (
                states.get(("WATCH-E2E", "white")) == "DONE"
                and states.get(("WATCH-E2E", "marble")) == "DONE"
                and states.get(("WATCH-E2E", "night")) == "AWAITING_REVIEW"
                and states.get(("BROKEN-E2E", "white")) == "FAILED"
            ),
            timeout=240,
        )
    assert states.get(("WATCH-E2E", "white")) == "DONE", states
    assert states[("WATCH-E2E", "marble")] == "DONE"
    assert states[("WATCH-E2E", "night")] == "AWAITING_REVIEW"
    with session_scope(settings.database_url) as session:
        broken_jobs = session.scalars(select(Job).where(Job.sku == "BROKEN-E2E")).all()
        assert {j.error_code for j in broken_jobs} == {"TRUNCATED_IMAGE"}
    home = Path(env["IMGPIPE_HOME"])
    assert len(list((home / "outbox" / "WATCH-E2E").glob("*.json"))) == 2
    assert sorted(p.name for p in home.glob("composites/WATCH-E2E/*/*")) == [
        "marble.webp",
        "night.png",
        "white.jpg",
    ]

    data = graphql(
        dagster_dev,
        """{ assetNodes { assetKey { path }
        partitionKeysByDimension { name partitionKeys } } }""",
    )
    mask = next(n for n in data["assetNodes"] if n["assetKey"]["path"] == ["mask"])
    keys = mask["partitionKeysByDimension"][0]["partitionKeys"]
    assert sorted(k.split("~")[0] for k in keys) == ["BROKEN-E2E", "WATCH-E2E"]
