"""Every named error imgpipe raises, in one place.

Each has a stable ``code`` that lands on the jobs row, in the UI and in alerts, and says
whether trying again later can succeed (``retryable``: a provider that was down, a download
that timed out) or only a change of input or configuration can (a truncated photo, an
unknown SKU). The reconciliation retries only retryable failures. A leaf module: it
imports nothing of imgpipe's, so every layer can use it.
"""

from __future__ import annotations


class ImgpipeError(Exception):
    """An expected failure with a stable code and a message a person can act on."""

    code = "IMGPIPE_ERROR"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- Input: a photo or a delivery that cannot be used as it is -----------------------------


class InvalidSku(ImgpipeError):
    code = "INVALID_SKU"


class NotAnImage(ImgpipeError):
    code = "NOT_AN_IMAGE"


class TruncatedImage(ImgpipeError):
    code = "TRUNCATED_IMAGE"


class ImageTooLarge(ImgpipeError):
    code = "IMAGE_TOO_LARGE"


class ChecksumMismatch(ImgpipeError):
    code = "SHA256_MISMATCH"


class TooManyImages(ImgpipeError):
    code = "MAX_IMAGES_PER_SKU"


class InvalidPayload(ImgpipeError):
    code = "INVALID_PAYLOAD"


class SignatureError(ImgpipeError):
    code = "BAD_SIGNATURE"


class MissingSignature(SignatureError):
    code = "MISSING_SIGNATURE"


class StaleTimestamp(SignatureError):
    code = "STALE_TIMESTAMP"


class QualityGateFailed(ImgpipeError):
    code = "QUALITY_GATE"


class ChannelRuleBroken(ImgpipeError):
    """A composite breaks a rule of its theme's channel (the rule and the measured value
    in the message); it is stored for a look but never published."""

    code = "CHANNEL_RULE"


# --- Fetching a photo from a URL ------------------------------------------------------------


class UrlRefused(ImgpipeError):
    code = "URL_REFUSED"


class SourceTooLarge(ImgpipeError):
    code = "SOURCE_TOO_LARGE"


class FetchFailed(ImgpipeError):
    code = "FETCH_FAILED"
    retryable = True


class FetchTimeout(ImgpipeError):
    code = "FETCH_TIMEOUT"
    retryable = True


# --- imgpipe's own state and configuration -------------------------------------------------


class SourceMissing(ImgpipeError):
    code = "SOURCE_MISSING"


class UnknownImage(ImgpipeError):
    code = "UNKNOWN_IMAGE"


class UnknownTheme(ImgpipeError):
    code = "UNKNOWN_THEME"


class InvalidThemeFile(ImgpipeError):
    code = "INVALID_THEME_FILE"


class ModelMissing(ImgpipeError):
    code = "MODEL_MISSING"


class IllegalTransition(ImgpipeError):
    code = "ILLEGAL_TRANSITION"


class SchemaOutOfDate(ImgpipeError):
    code = "SCHEMA_OUT_OF_DATE"


class DaemonStopped(ImgpipeError):
    """The Dagster daemon the demo started ended before the demo's photos were done."""

    code = "DAEMON_STOPPED"


class ChainStalled(ImgpipeError):
    """Jobs stopped moving with no run in flight to move them."""

    code = "CHAIN_STALLED"


class DatabaseUnavailable(ImgpipeError):
    """The jobs database cannot be reached or read (down, wrong URL, not a database)."""

    code = "DATABASE_UNAVAILABLE"
    retryable = True


class StorageKeyError(ImgpipeError):
    code = "INVALID_STORAGE_KEY"


class ConfigurationError(ImgpipeError):
    code = "CONFIGURATION"


class RunFailed(ImgpipeError):
    """A run ended without naming this image's own error (its process died, say)."""

    code = "RUN_FAILED"
    retryable = True


class InternalError(ImgpipeError):
    """An unexpected exception in imgpipe's own code, caught so the rest of a batch goes
    on; its type and message are kept."""

    code = "INTERNAL_ERROR"
    retryable = True


class Stranded(ImgpipeError):
    """A job waited in a stage with no live run and was requested again too often."""

    code = "STRANDED"


# --- Providers ------------------------------------------------------------------------------


class PredictionFailed(ImgpipeError):
    code = "REPLICATE_FAILED"

    def __init__(self, message: str, retryable: bool = False, cost_usd: float = 0.0) -> None:
        super().__init__(message)
        self.retryable = retryable  # a prediction that ended 'failed' may succeed again
        self.cost_usd = cost_usd  # what the failed prediction cost


class PredictionTimeout(ImgpipeError):
    code = "REPLICATE_TIMEOUT"
    retryable = True


class ReplicateUnavailable(ImgpipeError):
    code = "REPLICATE_UNAVAILABLE"
    retryable = True


class BudgetExceeded(ImgpipeError):
    code = "BUDGET_EXCEEDED"
    retryable = True  # tomorrow's budget


class GenerativeUnavailable(ImgpipeError):
    code = "GENERATIVE_UNAVAILABLE"


class SkuNotFound(ImgpipeError):
    code = "SKU_NOT_FOUND"


class SkuAmbiguous(ImgpipeError):
    code = "SKU_AMBIGUOUS"


class MediaFailed(ImgpipeError):
    code = "MEDIA_FAILED"


class ShopifyUnavailable(ImgpipeError):
    code = "SHOPIFY_UNAVAILABLE"
    retryable = True


class ShopifyError(ImgpipeError):
    code = "SHOPIFY_ERROR"


class JmsUnavailable(ImgpipeError):
    code = "JMS_UNAVAILABLE"
    retryable = True


def registry() -> dict[str, type[ImgpipeError]]:
    """Every error class by its code."""
    found: dict[str, type[ImgpipeError]] = {}
    pending: list[type[ImgpipeError]] = [ImgpipeError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def is_retryable(code: str | None) -> bool:
    """Whether a failure recorded under ``code`` may succeed when tried again."""
    cls = registry().get(code or "")
    return bool(cls and cls.retryable)
