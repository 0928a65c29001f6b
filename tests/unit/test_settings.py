"""One typed Settings: every variable read once, each default written once, .env.example
true to both, and a bad value a one-line reason."""

import re

import pytest

from imgpipe_assets.errors import ConfigurationError
from imgpipe_resources.settings import NAMES, VARIABLES, Settings
from tests.helpers import ROOT

# Read by others, documented beside imgpipe's own: Dagster's instance file, the tests.
OTHERS = {"DAGSTER_PG_URL", "IMGPIPE_TEST_POSTGRES_URL", "IMGPIPE_REQUIRE_POSTGRES"}


def example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(\S*)", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_env_example_documents_every_variable_with_its_default() -> None:
    documented = example()
    assert set(documented) - OTHERS == NAMES - {"XDG_CACHE_HOME"}
    for var in VARIABLES:
        if var.name in documented:
            assert documented[var.name] == var.default, var.name
            assert not (var.secret and documented[var.name]), f"{var.name} is a secret"


def test_nothing_but_settings_reads_the_environment() -> None:
    readers = []
    for folder in ("imgpipe_assets", "imgpipe_resources", "sensors"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if re.search(r"os\.environ|os\.getenv|env\.get\(", text):
                readers.append(str(path.relative_to(ROOT)))
    assert readers == ["imgpipe_resources/settings.py"]


def test_the_embedded_default_needs_no_variable() -> None:
    s = Settings.from_env({})
    assert (s.storage, s.segmenter, s.backgrounds, s.publisher) == (
        "local",
        "local",
        "none",
        "outbox",
    )
    assert s.database_url == f"sqlite:///{s.home / 'imgpipe.db'}"
    assert s.instance_dir() == s.home / "dagster"


def test_prod_switches_every_provider_and_each_can_be_switched_back() -> None:
    s = Settings.from_env({"IMGPIPE_ENV": "prod", "IMGPIPE_PUBLISHER": "outbox"})
    assert (s.storage, s.segmenter, s.backgrounds, s.publisher) == (
        "s3",
        "replicate",
        "replicate",
        "outbox",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JMS_WEBHOOK_TOLERANCE", "abc"),
        ("JMS_WEBHOOK_MAX_BODY", "-5"),
        ("REPLICATE_CONCURRENCY", "0"),
        ("IMGPIPE_CUTOUT_WORKERS", "0"),
        ("REPLICATE_PRICE_PER_SECOND", "nan"),
        ("REPLICATE_DAILY_BUDGET_USD", "lots"),
        ("MAX_IMAGES_PER_SKU", "2.5"),
        ("IMGPIPE_BACKDROP_KEY", "maybe"),
        ("IMGPIPE_ENV", "staging"),
        ("SHOPIFY_ATTACH_STRATEGY", "overwrite"),
    ],
)
def test_a_bad_value_is_a_named_error(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env({name: value})
    assert name in str(err.value) and "\n" not in str(err.value)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    s = Settings.from_env({"JMS_WEBHOOK_SECRET": "hunter2", "REPLICATE_API_TOKEN": "r8_x"})
    assert s.jms.webhook_secrets == ("hunter2",) and s.replicate.has_token
    assert "hunter2" not in repr(s) and "r8_x" not in repr(s)


def test_the_ambient_environment_is_kept_out_of_tests() -> None:
    import os

    assert not NAMES & set(os.environ)
