"""Fetching photos from URLs: refusals, caps and named errors, and a batch that survives them."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from imgpipe_assets.definitions import build_definitions
from imgpipe_resources.db import intake
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import IntakeRecord, Job
from imgpipe_resources.fetch import (
    FetchFailed,
    FetchTimeout,
    ImageFetcher,
    SourceTooLarge,
    UrlRefused,
    checked_address,
    host_allowed,
)
from imgpipe_resources.settings import Settings
from tests.helpers import Chain, png_header_only, run_range
from tests.servers import Reply, serve


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from imgpipe_assets.imaging.samples import render_sample

    return render_sample("RING-0001", size=400)


def routes(photo: bytes, port_holder: dict) -> dict:
    def base() -> str:
        return f"http://127.0.0.1:{port_holder['port']}"

    return {
        "/ok.jpg": lambda q, h: Reply(200, photo, {"Content-Type": "image/jpeg"}),
        "/hop.jpg": lambda q, h: Reply(302, b"", {"Location": "/ok.jpg"}),
        "/loop.jpg": lambda q, h: Reply(302, b"", {"Location": "/loop.jpg"}),
        "/to-loopback": lambda q, h: Reply(302, b"", {"Location": f"{base()}/ok.jpg"}),
        "/to-metadata": lambda q, h: Reply(
            302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}
        ),
        "/big.jpg": lambda q, h: Reply(200, b"\xff" * 300_000),
        "/unsized.jpg": lambda q, h: Reply(200, photo * 2, {"Content-Length": ""}),
        "/truncated.jpg": lambda q, h: Reply(200, photo[: len(photo) // 3]),
        "/bomb.png": lambda q, h: Reply(200, png_header_only(50_000, 50_000)),
        "/text.jpg": lambda q, h: Reply(200, b"<html>not found</html>"),
        "/gone.jpg": lambda q, h: Reply(404),
        # Every piece arrives well within a read timeout; the whole takes 10 x 0.5 s.
        "/drip.jpg": lambda q, h: Reply(200, photo, pieces=10, pause_s=0.5),
    }


@pytest.fixture(scope="module")
def server(photo: bytes):  # type: ignore[no-untyped-def]
    holder: dict = {}
    with serve(routes(photo, holder)) as base:
        holder["port"] = int(base.rsplit(":", 1)[1])
        yield base


def fetcher(allowed: tuple[str, ...] = ("localhost",)) -> ImageFetcher:
    return ImageFetcher(allowed_hosts=list(allowed), max_bytes=200_000, timeout_s=5)


def test_allow_listed_host_fetches_through_a_redirect(server: str, photo: bytes) -> None:
    assert fetcher().fetch(f"{server}/hop.jpg") == photo


def test_loopback_is_refused_without_the_allow_list(server: str) -> None:
    with pytest.raises(UrlRefused, match="not a public address"):
        ImageFetcher().fetch(f"{server}/ok.jpg")


def test_redirect_to_an_unlisted_loopback_address_is_refused(server: str) -> None:
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.1"):
        fetcher().fetch(f"{server}/to-loopback")


def test_redirect_to_the_metadata_address_is_refused(server: str) -> None:
    with pytest.raises(UrlRefused, match="metadata"):
        fetcher(("localhost", "169.254.169.254")).fetch(f"{server}/to-metadata")


@pytest.mark.parametrize("path", ["/big.jpg", "/unsized.jpg"])
def test_byte_cap_holds_whatever_the_server_declares(server: str, path: str, photo: bytes) -> None:
    with pytest.raises(SourceTooLarge):
        ImageFetcher(allowed_hosts=["localhost"], max_bytes=len(photo) + 10).fetch(server + path)


def test_the_whole_download_has_a_deadline(server: str, photo: bytes) -> None:
    """A server that drips its answer is cut off at the deadline, however quickly each
    piece comes; the same photo at full speed is fetched."""
    quick = ImageFetcher(allowed_hosts=["localhost"], max_bytes=200_000, timeout_s=2)
    with pytest.raises(FetchTimeout, match="more than 2"):
        quick.fetch(f"{server}/drip.jpg")
    patient = ImageFetcher(allowed_hosts=["localhost"], max_bytes=200_000, timeout_s=30)
    assert patient.fetch(f"{server}/drip.jpg") == photo
    assert quick.fetch(f"{server}/ok.jpg") == photo


def test_redirect_loops_are_bounded(server: str) -> None:
    with pytest.raises(FetchFailed, match="redirects"):
        fetcher().fetch(f"{server}/loop.jpg")


def test_http_errors_and_schemes_are_named(server: str) -> None:
    with pytest.raises(FetchFailed, match="404"):
        fetcher().fetch(f"{server}/gone.jpg")
    for url in ("file:///etc/passwd", "ftp://localhost/x", "gopher://x"):
        with pytest.raises(UrlRefused):
            fetcher().fetch(url)


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("cdn.3jms.test", [".3jms.test"], True),
        ("3jms.test", [".3jms.test"], True),
        ("evil3jms.test", [".3jms.test"], False),
        ("localhost", ["localhost"], True),
        ("LOCALHOST.", ["localhost"], True),
        ("127.0.0.1", ["localhost"], False),
    ],
)
def test_allow_list_matching(host: str, allowed: list[str], ok: bool) -> None:
    assert host_allowed(host, allowed) is ok


@pytest.mark.parametrize(
    "host", ["10.0.0.8", "192.168.1.1", "172.16.0.1", "100.64.0.1", "::1", "fe80::1", "0.0.0.0"]
)
def test_private_addresses_are_refused(host: str) -> None:
    with pytest.raises(UrlRefused):
        checked_address(host, 80, allowed=False)


def test_a_batch_of_announced_photos_survives_its_bad_members(
    small_settings: Settings, server: str, photo: bytes
) -> None:
    """Six photos announced by URL in one mask run: each bad one fails with its own named
    error in the jobs table, the good ones are fetched, stored and cut out."""
    truncated = photo[: len(photo) // 3]
    cases = [
        ("GOOD-1", f"{server}/ok.jpg", photo, None),
        ("META-1", f"{server}/to-metadata", photo, "URL_REFUSED"),
        ("SHA-1", f"{server}/ok.jpg", b"other bytes", "SHA256_MISMATCH"),
        ("TRUNC-1", f"{server}/truncated.jpg", truncated, "TRUNCATED_IMAGE"),
        ("BOMB-1", f"{server}/bomb.png", png_header_only(50_000, 50_000), "IMAGE_TOO_LARGE"),
        ("TEXT-1", f"{server}/text.jpg", b"<html>not found</html>", "NOT_AN_IMAGE"),
        ("GOOD-2", f"{server}/hop.jpg", photo, None),
    ]
    keys = []
    with session_scope(small_settings.database_url) as session:
        for sku, url, content, _ in cases:
            outcome = intake.record(
                session,
                event="image.created",
                sku=sku,
                sha256=hashlib.sha256(content).hexdigest(),
                source="webhook",
                image_url=url,
                delivery_id=sku,
            )
            keys.append(outcome.partition_key)
    jms = dataclasses.replace(small_settings.jms, allowed_image_hosts=("localhost",))
    defs = build_definitions(dataclasses.replace(small_settings, jms=jms))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", keys)
        result = run_range(defs, instance, "mask_job", keys[0], keys[-1])
        assert not result.success
        assert instance.get_materialized_partitions(dg.AssetKey("mask")) == {keys[0], keys[-1]}
    with session_scope(small_settings.database_url) as session:
        codes = {(j.sku, j.error_code) for j in session.scalars(select(Job))}
    for sku, _url, _content, code in cases:
        assert (sku, code) in codes
    assert len(cases) == 7
    stored = sorted(p.parent.name for p in Path(small_settings.home, "originals").rglob("*.jpg"))
    # Kept: what matched its sha256 and looks like an image (the truncated photo is the
    # evidence of its failure, and spares a download on retry); never the refused ones.
    assert stored == ["GOOD-1", "GOOD-2", "TRUNC-1"]


def test_a_photo_whose_download_failed_is_fetched_again_from_a_corrected_url(
    small_settings: Settings, server: str, photo: bytes
) -> None:
    """3JMS announces a photo at a URL that fails, then announces it again (a new delivery)
    at the right one: the photo is fetched from the new URL and goes through the chain; a
    replay of the first delivery changes nothing."""
    sha = hashlib.sha256(photo).hexdigest()

    def announce(url: str, delivery: str) -> intake.IntakeOutcome:
        with session_scope(small_settings.database_url) as session:
            return intake.record(
                session,
                event="image.created",
                sku="FIX-1",
                sha256=sha,
                source="webhook",
                image_url=url,
                delivery_id=delivery,
            )

    first = announce(f"{server}/gone.jpg", "d-1")
    jms = dataclasses.replace(small_settings.jms, allowed_image_hosts=("localhost",))
    defs = build_definitions(dataclasses.replace(small_settings, jms=jms))
    with dg.instance_for_test() as instance:
        chain = Chain(defs, instance)
        assert [r.success for r in chain.settle()] == [False]
        with session_scope(small_settings.database_url) as session:
            assert {j.error_code for j in session.scalars(select(Job))} == {"FETCH_FAILED"}
        assert not announce(f"{server}/gone.jpg", "d-1").created  # a replay: nothing moves
        again = announce(f"{server}/ok.jpg", "d-2")
        assert again.created and again.record_id == first.record_id
        assert again.reason and "fetched again" in again.reason
        # Due at once for the reconciliation, which asks for the cut-out again.
        (mask_run,) = chain.tick("reconcile_sensor")
        assert mask_run.success and mask_run.dagster_run.job_name == "mask_job"
        assert all(r.success for r in chain.settle())
        # Once fetched, a new URL is only a duplicate announcement.
        assert not announce(f"{server}/hop.jpg", "d-3").created
    with session_scope(small_settings.database_url) as session:
        jobs = list(session.scalars(select(Job)))
        (record,) = session.scalars(select(IntakeRecord))
        assert record.image_url == f"{server}/ok.jpg"
    assert len(jobs) == 3 and all(j.composite_key and j.error_code is None for j in jobs)
