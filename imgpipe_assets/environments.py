"""Which implementation of each resource an environment uses.

``IMGPIPE_ENV=local`` (the default) needs no account and no network: local files, the
offline segmenter, a dry-run Shopify outbox and SQLite (or any IMGPIPE_DATABASE_URL).
``IMGPIPE_ENV=prod`` switches storage to S3, cut-outs and generative backgrounds to
Replicate, and publishing to Shopify. Each provider can also be switched alone:
``IMGPIPE_STORAGE=local|s3``, ``IMGPIPE_SEGMENTER=local|replicate``,
``IMGPIPE_BACKGROUNDS=none|replicate``, ``IMGPIPE_PUBLISHER=outbox|shopify``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
from imgpipe_resources.jms.settings import JmsSettings
from imgpipe_resources.publishing import Publisher, ShopifyOutbox
from imgpipe_resources.replicate_models import ReplicateModels
from imgpipe_resources.segmentation import (
    DEFAULT_CUTOUT_MODEL,
    LocalSegmenter,
    ReplicateSegmenter,
    SegmentationProvider,
)
from imgpipe_resources.settings import Settings
from imgpipe_resources.shopify.client import ShopifyAdmin
from imgpipe_resources.storage import LocalObjectStore, ObjectStore
from imgpipe_resources.themes import ThemeLibrary


def _choice(env: Mapping[str, str], name: str, prod: str, local: str, allowed: set[str]) -> str:
    deployment = env.get("IMGPIPE_ENV") or "local"
    if deployment not in ("local", "prod"):
        raise ConfigurationError(f"IMGPIPE_ENV must be local or prod, not {deployment!r}")
    value = env.get(name) or (prod if deployment == "prod" else local)
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {sorted(allowed)}, not {value!r}")
    return value


def _secret(env: Mapping[str, str], name: str) -> Any:
    # A secret stays an environment reference: the UI shows its name, never its value.
    return dg.EnvVar(name) if env.get(name) else None


def storage_for(settings: Settings, env: Mapping[str, str] | None = None) -> ObjectStore:
    env = os.environ if env is None else env
    if _choice(env, "IMGPIPE_STORAGE", "s3", "local", {"local", "s3"}) == "local":
        return LocalObjectStore(root=str(settings.home))
    bucket = env.get("S3_BUCKET")
    if not bucket:
        raise ConfigurationError("S3_BUCKET is required when storage is s3")
    # Imported here: boto3 and dagster-aws add 0.4 s to every process that loads the code
    # location (each run, the code server), and the embedded default never needs them.
    from dagster_aws.s3 import S3Resource

    from imgpipe_resources.s3 import S3ObjectStore

    s3 = S3Resource(
        region_name=env.get("AWS_REGION") or None,
        endpoint_url=env.get("S3_ENDPOINT_URL") or None,
        aws_access_key_id=_secret(env, "AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=_secret(env, "AWS_SECRET_ACCESS_KEY"),
    )
    return S3ObjectStore(
        s3=s3,
        bucket=bucket,
        prefix=env.get("S3_PREFIX") or "",
        cdn_base_url=env.get("S3_CDN_BASE_URL") or None,
        presign_expiry_s=int(env.get("S3_PRESIGN_EXPIRY") or 3600),
    )


def replicate_for(env: Mapping[str, str]) -> ReplicateModels:
    budget = env.get("REPLICATE_DAILY_BUDGET_USD")
    return ReplicateModels(
        api_token=_secret(env, "REPLICATE_API_TOKEN"),
        base_url=env.get("REPLICATE_BASE_URL") or None,
        timeout_s=float(env.get("JOB_TIMEOUT") or 300),
        price_per_second_usd=float(env.get("REPLICATE_PRICE_PER_SECOND") or 0.000225),
        price_per_run_usd=float(env.get("REPLICATE_PRICE_PER_RUN") or 0.0),
        daily_budget_usd=float(budget) if budget else None,
    )


def segmenter_for(settings: Settings, env: Mapping[str, str] | None = None) -> SegmentationProvider:
    env = os.environ if env is None else env
    key = settings.backdrop_key
    if _choice(env, "IMGPIPE_SEGMENTER", "replicate", "local", {"local", "replicate"}) == "local":
        flip = env.get("IMGPIPE_SEGMENTER_FLIP", "").lower() in ("1", "true", "yes")
        return LocalSegmenter(models_dir=str(settings.models_dir), flip_tta=flip, backdrop_key=key)
    return ReplicateSegmenter(
        replicate=replicate_for(env),
        model_ref=env.get("REPLICATE_SEGMENTATION_MODEL") or DEFAULT_CUTOUT_MODEL,
        parallel=int(env.get("REPLICATE_CONCURRENCY") or 8),
        backdrop_key=key,
    )


def generator_for(env: Mapping[str, str] | None = None) -> BackgroundGenerator:
    env = os.environ if env is None else env
    if _choice(env, "IMGPIPE_BACKGROUNDS", "replicate", "none", {"none", "replicate"}) == "none":
        return NoBackgroundGenerator()
    return ReplicateBackgrounds(replicate=replicate_for(env))


def publisher_for(settings: Settings, env: Mapping[str, str] | None = None) -> Publisher:
    env = os.environ if env is None else env
    if _choice(env, "IMGPIPE_PUBLISHER", "shopify", "outbox", {"outbox", "shopify"}) == "outbox":
        return ShopifyOutbox(outbox_dir=str(settings.home / "outbox"))
    domain, token = env.get("SHOPIFY_STORE_DOMAIN"), _secret(env, "SHOPIFY_ADMIN_TOKEN")
    if not domain or token is None:
        raise ConfigurationError(
            "SHOPIFY_STORE_DOMAIN and SHOPIFY_ADMIN_TOKEN are required to publish to Shopify "
            "(IMGPIPE_PUBLISHER=outbox keeps the dry run)"
        )
    strategy = env.get("SHOPIFY_ATTACH_STRATEGY") or "append"
    if strategy not in ("append", "replace"):
        raise ConfigurationError("SHOPIFY_ATTACH_STRATEGY must be append or replace")
    return ShopifyAdmin(
        store_domain=domain,
        admin_token=token,
        api_version=env.get("SHOPIFY_API_VERSION") or "2025-01",
        admin_url=env.get("SHOPIFY_ADMIN_URL") or None,
        attach_strategy=strategy,
    )


def resources_for(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if env is None else env
    jms = JmsSettings.from_env(env)
    return {
        "db": JobsDatabase(url=settings.database_url),
        "storage": storage_for(settings, env),
        "segmenter": segmenter_for(settings, env),
        "generator": generator_for(env),
        "alerts": SlackAlerts(
            webhook_url=_secret(env, "SLACK_WEBHOOK_URL"),
            webserver_url=env.get("DAGSTER_WEBSERVER_URL") or "http://localhost:3000",
        ),
        "publisher": publisher_for(settings, env),
        "themes": ThemeLibrary(path=str(settings.themes_path)),
        "fetcher": ImageFetcher(allowed_hosts=list(jms.allowed_image_hosts)),
        "jms": JmsClient(
            base_url=jms.base_url,
            images_path=jms.images_path,
            api_token=_secret(env, "JMS_API_TOKEN"),
        ),
    }


def executor_for(env: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """How a run's steps execute (IMGPIPE_EXECUTOR).

    ``in_process`` (default): every step in the run's own process, no start-up per step.
    ``multiprocess``: a process per step, on the run's machine.
    ``celery``: steps go to a queue on a broker (IMGPIPE_CELERY_BROKER, e.g. RabbitMQ or
    Redis) and run on ``dagster-celery`` workers on any number of machines. Workers need the
    same code, the same Dagster instance (PostgreSQL) and shared storage (S3, PostgreSQL
    jobs database); see deploy/README.md.
    ``k8s``: a Kubernetes pod per step (``dagster-k8s``), under the K8sRunLauncher.
    """
    env = os.environ if env is None else env
    choice = (env.get("IMGPIPE_EXECUTOR") or "in_process").strip().lower().replace("-", "_")
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
    if choice != "celery":
        raise ConfigurationError("IMGPIPE_EXECUTOR must be in_process, multiprocess, celery or k8s")
    try:
        from dagster_celery import celery_executor
    except ImportError:
        raise ConfigurationError(
            "IMGPIPE_EXECUTOR=celery needs dagster-celery: pip install -e '.[celery]'"
        ) from None
    config: dict[str, Any] = {"config_source": celery_settings(env)}
    # URLs may carry passwords: read by Dagster from the environment, never written to run
    # config. Unset: the local RabbitMQ with its RPC result backend.
    if env.get("IMGPIPE_CELERY_BROKER"):
        config["broker"] = {"env": "IMGPIPE_CELERY_BROKER"}
    if env.get("IMGPIPE_CELERY_BACKEND"):
        config["backend"] = {"env": "IMGPIPE_CELERY_BACKEND"}
    return celery_executor.configured(config, name="celery_executor")


def celery_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Celery settings shared by the executor and the workers (deploy/celery.yaml)."""
    return {
        "task_default_queue": env.get("IMGPIPE_CELERY_QUEUE") or "imgpipe",
        # A step is minutes of work: a worker takes one at a time and acknowledges it when
        # done, so a worker that dies hands its step to another (steps are idempotent).
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
    }
