"""Which implementation of each resource an environment uses.

``IMGPIPE_ENV=local`` (the default) needs no account and no network: local files, the
offline segmenter, a dry-run Shopify outbox and SQLite (or any IMGPIPE_DATABASE_URL).
``IMGPIPE_ENV=prod`` switches storage to S3, cut-outs and generative backgrounds to
Replicate, and publishing to Shopify. Each provider can also be switched alone:
``IMGPIPE_STORAGE=local|s3``, ``IMGPIPE_SEGMENTER=local|replicate``,
``IMGPIPE_BACKGROUNDS=none|replicate``, ``IMGPIPE_PUBLISHER=outbox|shopify``.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from imgpipe_assets.errors import ConfigurationError
from imgpipe_resources.alerts import SlackAlerts
from imgpipe_resources.backgrounds import (
    BackgroundGenerator,
    NoBackgroundGenerator,
    ReplicateBackgrounds,
)
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.fetch import ImageFetcher
from imgpipe_resources.jms.client import JmsClient
from imgpipe_resources.publishing import Publisher, ShopifyOutbox
from imgpipe_resources.replicate_models import ReplicateModels
from imgpipe_resources.segmentation import (
    LocalSegmenter,
    ReplicateSegmenter,
    SegmentationProvider,
)
from imgpipe_resources.settings import Settings
from imgpipe_resources.shopify.client import ShopifyAdmin
from imgpipe_resources.storage import LocalObjectStore, ObjectStore
from imgpipe_resources.themes import ThemeLibrary


def _secret(name: str, present: bool) -> Any:
    # A secret stays an environment reference: the UI shows its name, never its value.
    return dg.EnvVar(name) if present else None


def storage_for(settings: Settings) -> ObjectStore:
    if settings.storage == "local":
        return LocalObjectStore(root=str(settings.home))
    s3 = settings.s3
    if not s3.bucket:
        raise ConfigurationError("S3_BUCKET is required when storage is s3")
    # Imported here: boto3 and dagster-aws add 0.4 s to every process that loads the code
    # location (each run, the code server), and the embedded default never needs them.
    from dagster_aws.s3 import S3Resource

    from imgpipe_resources.s3 import S3ObjectStore

    return S3ObjectStore(
        s3=S3Resource(
            region_name=s3.region or None,
            endpoint_url=s3.endpoint_url,
            aws_access_key_id=_secret("AWS_ACCESS_KEY_ID", s3.has_access_key),
            aws_secret_access_key=_secret("AWS_SECRET_ACCESS_KEY", s3.has_access_key),
        ),
        bucket=s3.bucket,
        prefix=s3.prefix,
        cdn_base_url=s3.cdn_base_url,
        presign_expiry_s=s3.presign_expiry_s,
    )


def replicate_for(settings: Settings) -> ReplicateModels:
    r = settings.replicate
    return ReplicateModels(
        api_token=_secret("REPLICATE_API_TOKEN", r.has_token),
        base_url=r.base_url,
        timeout_s=r.timeout_s,
        price_per_second_usd=r.price_per_second_usd,
        price_per_run_usd=r.price_per_run_usd,
        daily_budget_usd=r.daily_budget_usd,
    )


def segmenter_for(settings: Settings) -> SegmentationProvider:
    if settings.segmenter == "local":
        return LocalSegmenter(
            models_dir=str(settings.models_dir),
            flip_tta=settings.segmenter_flip,
            workers=settings.cutout_workers,
            backdrop_key=settings.backdrop_key,
        )
    return ReplicateSegmenter(
        replicate=replicate_for(settings),
        model_ref=settings.replicate.cutout_model,
        parallel=settings.replicate.concurrency,
        backdrop_key=settings.backdrop_key,
    )


def generator_for(settings: Settings) -> BackgroundGenerator:
    if settings.backgrounds == "none":
        return NoBackgroundGenerator()
    return ReplicateBackgrounds(replicate=replicate_for(settings))


def publisher_for(settings: Settings) -> Publisher:
    if settings.publisher == "outbox":
        return ShopifyOutbox(outbox_dir=str(settings.home / "outbox"))
    shop = settings.shopify
    if not shop.store_domain or not shop.has_token:
        raise ConfigurationError(
            "SHOPIFY_STORE_DOMAIN and SHOPIFY_ADMIN_TOKEN are required to publish to Shopify "
            "(IMGPIPE_PUBLISHER=outbox keeps the dry run)"
        )
    return ShopifyAdmin(
        store_domain=shop.store_domain,
        admin_token=dg.EnvVar("SHOPIFY_ADMIN_TOKEN"),
        api_version=shop.api_version,
        admin_url=shop.admin_url,
        attach_strategy=shop.attach_strategy,
    )


def resources_for(settings: Settings) -> dict[str, Any]:
    return {
        "db": JobsDatabase(url=settings.database_url),
        "storage": storage_for(settings),
        "segmenter": segmenter_for(settings),
        "generator": generator_for(settings),
        "alerts": SlackAlerts(
            webhook_url=_secret("SLACK_WEBHOOK_URL", settings.slack_set),
            webserver_url=settings.webserver_url,
        ),
        "publisher": publisher_for(settings),
        "themes": ThemeLibrary(path=str(settings.themes_path)),
        "fetcher": ImageFetcher(allowed_hosts=list(settings.jms.allowed_image_hosts)),
        "jms": JmsClient(
            base_url=settings.jms.base_url,
            images_path=settings.jms.images_path,
            api_token=_secret("JMS_API_TOKEN", settings.jms.has_api_token),
        ),
    }


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    """How a run's steps execute (IMGPIPE_EXECUTOR).

    ``in_process`` (default): every step in the run's own process, no start-up per step.
    ``multiprocess``: a process per step, on the run's machine.
    ``celery``: steps go to a queue on a broker (IMGPIPE_CELERY_BROKER, e.g. RabbitMQ or
    Redis) and run on ``dagster-celery`` workers on any number of machines. Workers need the
    same code, the same Dagster instance (PostgreSQL) and shared storage (S3, PostgreSQL
    jobs database); see deploy/README.md.
    ``k8s``: a Kubernetes pod per step (``dagster-k8s``), under the K8sRunLauncher.
    """
    choice = settings.executor
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "multiprocess":
        return dg.multiprocess_executor
    if choice == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError:
            raise ConfigurationError(
                "IMGPIPE_EXECUTOR=k8s needs dagster-k8s: pip install -e '.[k8s]'"
            ) from None
        return k8s_job_executor
    try:
        from dagster_celery import celery_executor
    except ImportError:
        raise ConfigurationError(
            "IMGPIPE_EXECUTOR=celery needs dagster-celery: pip install -e '.[celery]'"
        ) from None
    config: dict[str, Any] = {"config_source": celery_settings(settings)}
    # URLs may carry passwords: read by Dagster from the environment, never written to run
    # config. Unset: the local RabbitMQ with its RPC result backend.
    if settings.celery_broker_set:
        config["broker"] = {"env": "IMGPIPE_CELERY_BROKER"}
    if settings.celery_backend_set:
        config["backend"] = {"env": "IMGPIPE_CELERY_BACKEND"}
    return celery_executor.configured(config, name="celery_executor")


def celery_settings(settings: Settings) -> dict[str, Any]:
    """Celery settings shared by the executor and the workers (deploy/celery.yaml)."""
    return {
        "task_default_queue": settings.celery_queue,
        # A step is minutes of work: a worker takes one at a time and acknowledges it when
        # done, so a worker that dies hands its step to another (steps are idempotent).
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
    }
