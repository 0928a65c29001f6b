"""The one error registry: every code once, each with whether a retry can help."""

import ast

from imgpipe_assets import errors
from tests.helpers import ROOT


def test_every_code_is_unique_and_registered() -> None:
    classes = errors.registry()
    assert len(classes) >= 35
    codes = [cls.code for cls in classes.values()]
    assert len(codes) == len(set(codes))
    assert all(code == code.upper() and " " not in code for code in codes)


def test_only_transient_failures_are_retryable() -> None:
    assert errors.is_retryable("FETCH_TIMEOUT") and errors.is_retryable("SHOPIFY_UNAVAILABLE")
    assert errors.is_retryable("RUN_FAILED")
    assert not errors.is_retryable("TRUNCATED_IMAGE") and not errors.is_retryable("SKU_NOT_FOUND")
    assert not errors.is_retryable(None) and not errors.is_retryable("NO_SUCH_CODE")
    assert errors.PredictionFailed("x", retryable=True).retryable


def test_no_module_defines_an_error_code_of_its_own() -> None:
    """Codes live in the registry alone: a class with a ``code`` anywhere else is a second
    registry in the making."""
    offenders = []
    for folder in ("imgpipe_assets", "imgpipe_resources", "sensors"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "imgpipe_assets" / "errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                    isinstance(item, ast.Assign)
                    and any(getattr(t, "id", "") == "code" for t in item.targets)
                    for item in node.body
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert offenders == []
