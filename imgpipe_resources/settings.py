"""Every setting imgpipe reads, read once, in one place, when a process asks (never at import).

``VARIABLES`` lists each environment variable with its default, written once; ``.env.example``
documents the same list (a test holds the two together). ``Settings.from_env`` turns them
into one frozen, typed object; nothing else in imgpipe reads the environment. A value that
cannot be read (``JMS_WEBHOOK_TOLERANCE=abc``) is a ``ConfigurationError`` naming the
variable, not a traceback. Secrets are kept out of ``repr``; resources receive them as
``dagster.EnvVar`` references, so the UI shows their names, never their values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgpipe_assets.errors import ConfigurationError

PACKAGE_THEMES = Path(__file__).resolve().parent.parent / "imgpipe_assets" / "themes.yaml"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as .env.example writes it; "" = unset (a default worked out, or none)
    secret: bool = False


VARIABLES: tuple[Variable, ...] = tuple(
    Variable(n, d, s)
    for n, d, s in (
        ("IMGPIPE_HOME", ".imgpipe", False),
        ("IMGPIPE_DATABASE_URL", "", False),  # sqlite:///$IMGPIPE_HOME/imgpipe.db
        ("IMGPIPE_THEMES", "", False),  # the shipped themes.yaml
        ("IMGPIPE_MODELS_DIR", "", False),  # $XDG_CACHE_HOME/imgpipe/models
        ("XDG_CACHE_HOME", "", False),
        ("IMGPIPE_ENV", "local", False),
        ("IMGPIPE_STORAGE", "", False),  # from IMGPIPE_ENV
        ("IMGPIPE_SEGMENTER", "", False),
        ("IMGPIPE_SEGMENTER_FLIP", "", False),
        ("IMGPIPE_CUTOUT_WORKERS", "2", False),
        ("IMGPIPE_BACKDROP_KEY", "1", False),
        ("IMGPIPE_BACKGROUNDS", "", False),
        ("IMGPIPE_PUBLISHER", "", False),
        ("IMGPIPE_EXECUTOR", "", False),  # in_process
        ("IMGPIPE_CELERY_BROKER", "", True),
        ("IMGPIPE_CELERY_BACKEND", "", True),
        ("IMGPIPE_CELERY_QUEUE", "imgpipe", False),
        ("AWS_REGION", "us-east-1", False),
        ("AWS_ACCESS_KEY_ID", "", True),
        ("AWS_SECRET_ACCESS_KEY", "", True),
        ("S3_BUCKET", "", False),
        ("S3_PREFIX", "", False),
        ("S3_ENDPOINT_URL", "", False),
        ("S3_CDN_BASE_URL", "", False),
        ("S3_PRESIGN_EXPIRY", "3600", False),
        ("REPLICATE_API_TOKEN", "", True),
        ("REPLICATE_BASE_URL", "", False),
        (
            "REPLICATE_SEGMENTATION_MODEL",
            "851-labs/background-remover:"
            "a029dff38972b5fda4ec5d75d7d1cd25aeff621d2cf4946a41055d7db66b80bc",
            False,
        ),
        ("REPLICATE_PRICE_PER_SECOND", "0.000225", False),
        ("REPLICATE_PRICE_PER_RUN", "0", False),
        ("REPLICATE_DAILY_BUDGET_USD", "", False),
        ("REPLICATE_CONCURRENCY", "8", False),
        ("JOB_TIMEOUT", "300", False),
        ("SHOPIFY_STORE_DOMAIN", "", False),
        ("SHOPIFY_ADMIN_TOKEN", "", True),
        ("SHOPIFY_API_VERSION", "2025-01", False),
        ("SHOPIFY_ATTACH_STRATEGY", "append", False),
        ("SHOPIFY_ADMIN_URL", "", False),
        ("MAX_IMAGES_PER_SKU", "10", False),
        ("JOB_CLEANUP_DAYS", "30", False),
        ("JOB_CLEANUP_COMPOSITES", "0", False),
        ("IMGPIPE_RECONCILE_AFTER", "900", False),
        ("IMGPIPE_RECONCILE_ATTEMPTS", "3", False),
        ("JMS_WEBHOOK_SECRET", "", True),
        ("JMS_WEBHOOK_TOLERANCE", "300", False),
        ("JMS_WEBHOOK_MAX_BODY", "65536", False),
        ("JMS_BASE_URL", "", False),
        ("JMS_IMAGES_PATH", "/images", False),
        ("JMS_API_TOKEN", "", True),
        ("JMS_POLL_INTERVAL", "300", False),
        ("JMS_ALLOWED_IMAGE_HOSTS", "", False),
        ("SLACK_WEBHOOK_URL", "", True),
        ("DAGSTER_WEBSERVER_URL", "http://localhost:3000", False),
        ("DAGSTER_HOME", "", False),  # $IMGPIPE_HOME/dagster for the demo
    )
)
NAMES = frozenset(v.name for v in VARIABLES)


class _Reader:
    """Typed reads of the raw values, each failure naming its variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        defaults = {v.name: v.default for v in VARIABLES}
        self.raw = {name: (env.get(name) or "").strip() or defaults[name] for name in NAMES}

    def text(self, name: str) -> str | None:
        return self.raw[name] or None

    def number(self, name: str, kind: Callable[[str], Any], least: float) -> Any:
        value = self.raw[name]
        try:
            parsed = kind(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, not {value!r}") from None
        if parsed != parsed or parsed < least or parsed == float("inf"):
            raise ConfigurationError(f"{name} must be a number of at least {least}, not {value!r}")
        return parsed

    def optional_number(self, name: str) -> float | None:
        return self.number(name, float, 0) if self.raw[name] else None

    def flag(self, name: str) -> bool:
        value = self.raw[name].lower()
        if value in ("", "0", "false", "no", "off"):
            return False
        if value in ("1", "true", "yes", "on"):
            return True
        raise ConfigurationError(f"{name} must be 1 or 0, not {self.raw[name]!r}")

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = (self.raw[name] or default).lower().replace("-", "_")
        if value not in options:
            raise ConfigurationError(
                f"{name} must be one of {', '.join(options)}, not {self.raw[name]!r}"
            )
        return value

    def items(self, name: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in self.raw[name].split(",") if v.strip())


@dataclass(frozen=True)
class S3Settings:
    bucket: str | None = None
    prefix: str = ""
    region: str = "us-east-1"
    endpoint_url: str | None = None
    cdn_base_url: str | None = None
    presign_expiry_s: int = 3600
    has_access_key: bool = False  # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set


@dataclass(frozen=True)
class ReplicateSettings:
    has_token: bool = False  # REPLICATE_API_TOKEN set
    base_url: str | None = None
    cutout_model: str = ""
    price_per_second_usd: float = 0.000225
    price_per_run_usd: float = 0.0
    daily_budget_usd: float | None = None
    concurrency: int = 8
    timeout_s: float = 300.0


@dataclass(frozen=True)
class ShopifySettings:
    store_domain: str | None = None
    has_token: bool = False  # SHOPIFY_ADMIN_TOKEN set
    api_version: str = "2025-01"
    attach_strategy: str = "append"
    admin_url: str | None = None


@dataclass(frozen=True)
class JmsSettings:
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    timestamp_tolerance_s: int = 300
    max_body_bytes: int = 65536
    base_url: str | None = None
    has_api_token: bool = False  # JMS_API_TOKEN set
    poll_interval_s: int = 300
    allowed_image_hosts: tuple[str, ...] = ()
    images_path: str = "/images"


@dataclass(frozen=True)
class Settings:
    """Where imgpipe keeps its data, which provider does each job, and their knobs."""

    home: Path
    database_url: str
    themes_path: Path
    models_dir: Path
    max_images_per_sku: int = 10
    cleanup_days: int = 30
    cleanup_composites: bool = False
    reconcile_after_s: int = 900  # a job waiting this long with no live run is asked again
    reconcile_attempts: int = 3  # times, before it is STRANDED
    backdrop_key: bool = True  # IMGPIPE_BACKDROP_KEY: key plain studio backdrops
    segmenter_flip: bool = False
    cutout_workers: int = 2  # IMGPIPE_CUTOUT_WORKERS: photos a mask run cuts out at once
    storage: str = "local"  # local | s3
    segmenter: str = "local"  # local | replicate
    backgrounds: str = "none"  # none | replicate
    publisher: str = "outbox"  # outbox | shopify
    executor: str = "in_process"  # in_process | multiprocess | celery | k8s
    celery_queue: str = "imgpipe"
    celery_broker_set: bool = False
    celery_backend_set: bool = False
    dagster_home: Path | None = None
    webserver_url: str = "http://localhost:3000"
    slack_set: bool = False  # SLACK_WEBHOOK_URL set
    s3: S3Settings = field(default_factory=S3Settings)
    replicate: ReplicateSettings = field(default_factory=ReplicateSettings)
    shopify: ShopifySettings = field(default_factory=ShopifySettings)
    jms: JmsSettings = field(default_factory=JmsSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        r = _Reader(env)
        home = Path(r.raw["IMGPIPE_HOME"]).expanduser().absolute()
        cache = r.text("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        deployment = r.choice("IMGPIPE_ENV", ("local", "prod"), "local")
        prod = deployment == "prod"
        dagster_home = r.text("DAGSTER_HOME")
        return cls(
            home=home,
            database_url=r.text("IMGPIPE_DATABASE_URL") or f"sqlite:///{home / 'imgpipe.db'}",
            themes_path=Path(r.text("IMGPIPE_THEMES") or PACKAGE_THEMES).expanduser(),
            models_dir=Path(
                r.text("IMGPIPE_MODELS_DIR") or Path(cache) / "imgpipe" / "models"
            ).expanduser(),
            max_images_per_sku=r.number("MAX_IMAGES_PER_SKU", int, 1),
            cleanup_days=r.number("JOB_CLEANUP_DAYS", int, 0),
            cleanup_composites=r.flag("JOB_CLEANUP_COMPOSITES"),
            reconcile_after_s=r.number("IMGPIPE_RECONCILE_AFTER", int, 1),
            reconcile_attempts=r.number("IMGPIPE_RECONCILE_ATTEMPTS", int, 1),
            backdrop_key=r.flag("IMGPIPE_BACKDROP_KEY"),
            segmenter_flip=r.flag("IMGPIPE_SEGMENTER_FLIP"),
            cutout_workers=r.number("IMGPIPE_CUTOUT_WORKERS", int, 1),
            storage=r.choice("IMGPIPE_STORAGE", ("local", "s3"), "s3" if prod else "local"),
            segmenter=r.choice(
                "IMGPIPE_SEGMENTER", ("local", "replicate"), "replicate" if prod else "local"
            ),
            backgrounds=r.choice(
                "IMGPIPE_BACKGROUNDS", ("none", "replicate"), "replicate" if prod else "none"
            ),
            publisher=r.choice(
                "IMGPIPE_PUBLISHER", ("outbox", "shopify"), "shopify" if prod else "outbox"
            ),
            executor=r.choice(
                "IMGPIPE_EXECUTOR", ("in_process", "multiprocess", "celery", "k8s"), "in_process"
            ),
            celery_queue=r.raw["IMGPIPE_CELERY_QUEUE"],
            celery_broker_set=bool(r.text("IMGPIPE_CELERY_BROKER")),
            celery_backend_set=bool(r.text("IMGPIPE_CELERY_BACKEND")),
            dagster_home=Path(dagster_home).expanduser() if dagster_home else None,
            webserver_url=r.raw["DAGSTER_WEBSERVER_URL"],
            slack_set=bool(r.text("SLACK_WEBHOOK_URL")),
            s3=S3Settings(
                bucket=r.text("S3_BUCKET"),
                prefix=r.raw["S3_PREFIX"],
                region=r.raw["AWS_REGION"],
                endpoint_url=r.text("S3_ENDPOINT_URL"),
                cdn_base_url=r.text("S3_CDN_BASE_URL"),
                presign_expiry_s=r.number("S3_PRESIGN_EXPIRY", int, 1),
                has_access_key=bool(
                    r.text("AWS_ACCESS_KEY_ID") and r.text("AWS_SECRET_ACCESS_KEY")
                ),
            ),
            replicate=ReplicateSettings(
                has_token=bool(r.text("REPLICATE_API_TOKEN")),
                base_url=r.text("REPLICATE_BASE_URL"),
                cutout_model=r.raw["REPLICATE_SEGMENTATION_MODEL"],
                price_per_second_usd=r.number("REPLICATE_PRICE_PER_SECOND", float, 0),
                price_per_run_usd=r.number("REPLICATE_PRICE_PER_RUN", float, 0),
                daily_budget_usd=r.optional_number("REPLICATE_DAILY_BUDGET_USD"),
                concurrency=r.number("REPLICATE_CONCURRENCY", int, 1),
                timeout_s=r.number("JOB_TIMEOUT", float, 1),
            ),
            shopify=ShopifySettings(
                store_domain=r.text("SHOPIFY_STORE_DOMAIN"),
                has_token=bool(r.text("SHOPIFY_ADMIN_TOKEN")),
                api_version=r.raw["SHOPIFY_API_VERSION"],
                attach_strategy=r.choice(
                    "SHOPIFY_ATTACH_STRATEGY", ("append", "replace"), "append"
                ),
                admin_url=r.text("SHOPIFY_ADMIN_URL"),
            ),
            jms=JmsSettings(
                webhook_secrets=r.items("JMS_WEBHOOK_SECRET"),
                timestamp_tolerance_s=r.number("JMS_WEBHOOK_TOLERANCE", int, 1),
                max_body_bytes=r.number("JMS_WEBHOOK_MAX_BODY", int, 1),
                base_url=r.text("JMS_BASE_URL"),
                has_api_token=bool(r.text("JMS_API_TOKEN")),
                poll_interval_s=r.number("JMS_POLL_INTERVAL", int, 1),
                allowed_image_hosts=r.items("JMS_ALLOWED_IMAGE_HOSTS"),
                images_path=r.raw["JMS_IMAGES_PATH"],
            ),
        )

    def instance_dir(self) -> Path:
        """The Dagster instance the demo and the embedded default use."""
        return self.dagster_home or self.home / "dagster"


def default_models_dir(env: Mapping[str, str] | None = None) -> Path:
    return Settings.from_env(env).models_dir


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for a process imgpipe starts (the demo's Dagster daemon): this
    process's own, so the child reads the same settings and secrets, plus ``extra``."""
    return {**os.environ, **extra}
