"""Named errors. Each has a stable ``code`` that lands in the jobs table and in alerts."""

from __future__ import annotations


class ImgpipeError(Exception):
    """An expected failure with a stable code and a message a person can act on."""

    code = "IMGPIPE_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


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


class SourceMissing(ImgpipeError):
    code = "SOURCE_MISSING"


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


class UnknownImage(ImgpipeError):
    code = "UNKNOWN_IMAGE"


class TooManyImages(ImgpipeError):
    code = "MAX_IMAGES_PER_SKU"


class StorageKeyError(ImgpipeError):
    code = "INVALID_STORAGE_KEY"


class QualityGateFailed(ImgpipeError):
    code = "QUALITY_GATE"
