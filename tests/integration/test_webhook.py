"""The webhook receiver: every way a delivery can be wrong, on the wire and in the table."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.migrate import upgrade
from imgpipe_resources.db.models import IntakeRecord
from imgpipe_resources.jms.receiver import PATH, create_app
from imgpipe_resources.jms.signing import DELIVERY, SIGNATURE, TIMESTAMP, sign
from imgpipe_resources.settings import Settings
from tests.helpers import free_port, make_settings

SECRET = "s3cret-current"
OLD = "s3cret-previous"
SHA = "ab" * 32


def with_jms(settings: Settings, **overrides: object) -> Settings:
    """``settings`` with the receiver's 3JMS settings: two secrets, a 4 KiB body cap."""
    jms = Settings.from_env(
        {"JMS_WEBHOOK_SECRET": f"{SECRET}, {OLD}", "JMS_WEBHOOK_MAX_BODY": "4096"}
    ).jms
    jms = dataclasses.replace(jms, **overrides)  # type: ignore[arg-type]
    return dataclasses.replace(settings, jms=jms)


def event(**fields: object) -> bytes:
    payload = {
        "event": "image.created",
        "sku": "VWS200433868",
        "imageUrl": "https://cdn.3jms.test/p/1.jpg",
        "sha256": SHA,
        "extra": {"x": 1},
    }
    payload.update(fields)
    return json.dumps({k: v for k, v in payload.items() if v is not None}).encode()


def rows(settings: Settings) -> list[IntakeRecord]:
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(IntakeRecord).order_by(IntakeRecord.id)))


@pytest.fixture(params=["sqlite", "postgresql"])
def receiver_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = make_settings(tmp_path / "home", url)
    upgrade(s.database_url)
    return s


@pytest.fixture
def client(receiver_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(with_jms(receiver_settings))) as c:
        yield c


def post(client: TestClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return client.post(PATH, content=body, headers={"Content-Type": "application/json", **headers})


def test_valid_delivery_is_recorded_once(client: TestClient, receiver_settings: Settings) -> None:
    body = event()
    response = post(client, body, sign(body, SECRET, delivery_id="d-1"))
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    assert response.json()["partition_key"] == "VWS200433868~" + SHA[:12]
    (row,) = rows(receiver_settings)
    assert (row.delivery_id, row.source, row.status, row.image_url) == (
        "d-1",
        "webhook",
        "ACCEPTED",
        "https://cdn.3jms.test/p/1.jpg",
    )
    assert row.payload and row.payload["extra"] == {"x": 1}


def test_replayed_delivery_is_acknowledged_without_a_second_record(
    client: TestClient, receiver_settings: Settings
) -> None:
    body = event()
    headers = sign(body, SECRET, delivery_id="d-1")
    assert post(client, body, headers).status_code == 202
    again = post(client, body, headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    # The same image under a new delivery id is the same intake record too.
    assert post(client, body, sign(body, SECRET, delivery_id="d-2")).status_code == 200
    assert len(rows(receiver_settings)) == 1


def test_rotated_secret_is_accepted(client: TestClient, receiver_settings: Settings) -> None:
    body = event()
    assert post(client, body, sign(body, OLD)).status_code == 202
    assert len(rows(receiver_settings)) == 1


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (
            lambda b, h: (b, {k: v for k, v in h.items() if k != SIGNATURE}),
            401,
            "MISSING_SIGNATURE",
        ),
        (
            lambda b, h: (b, {k: v for k, v in h.items() if k != TIMESTAMP}),
            401,
            "MISSING_SIGNATURE",
        ),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != DELIVERY}), 401, "MISSING_SIGNATURE"),
        (lambda b, h: (b, {**h, SIGNATURE: "sha256=" + "0" * 64}), 401, "BAD_SIGNATURE"),
        (lambda b, h: (b, {**h, SIGNATURE: h[SIGNATURE][7:]}), 401, "BAD_SIGNATURE"),
        (lambda b, h: (b, sign(b, "not-the-secret")), 401, "BAD_SIGNATURE"),
        (
            lambda b, h: (b, sign(b, SECRET, timestamp=int(time.time()) - 301)),
            401,
            "STALE_TIMESTAMP",
        ),
        (
            lambda b, h: (b, sign(b, SECRET, timestamp=int(time.time()) + 3600)),
            401,
            "STALE_TIMESTAMP",
        ),
        (lambda b, h: (b[:-2] + bytes([b[-2] ^ 1]) + b[-1:], h), 401, "BAD_SIGNATURE"),
        (lambda b, h: (b, {**h, TIMESTAMP: "yesterday"}), 401, "BAD_SIGNATURE"),
    ],
    ids=[
        "no-signature",
        "no-timestamp",
        "no-delivery",
        "wrong",
        "no-prefix",
        "wrong-secret",
        "stale",
        "future",
        "body-changed-one-byte",
        "timestamp-not-a-number",
    ],
)
def test_bad_signatures_are_refused_and_record_nothing(
    client: TestClient,
    receiver_settings: Settings,
    mutate,
    status: int,
    code: str,  # type: ignore[no-untyped-def]
) -> None:
    body = event()
    body2, headers = mutate(body, sign(body, SECRET))
    response = post(client, body2, headers)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert rows(receiver_settings) == []


def test_oversize_body_is_refused(client: TestClient, receiver_settings: Settings) -> None:
    body = event(padding="x" * 5000)
    response = post(client, body, sign(body, SECRET))
    assert (response.status_code, response.json()["error"]) == (413, "BODY_TOO_LARGE")
    assert rows(receiver_settings) == []


def test_malformed_json_is_refused(client: TestClient, receiver_settings: Settings) -> None:
    body = b'{"event": "image.created", "sku": '
    response = post(client, body, sign(body, SECRET))
    assert (response.status_code, response.json()["error"]) == (400, "MALFORMED_JSON")
    assert rows(receiver_settings) == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"sha256": None}, "sha256"),
        ({"sku": None}, "sku"),
        ({"imageUrl": None}, "imageUrl"),
        ({"sha256": "xyz"}, "sha256"),
        ({"imageUrl": "file:///etc/passwd"}, "imageUrl"),
        ({"event": None}, "event"),
    ],
)
def test_missing_or_invalid_fields_are_named(
    client: TestClient, receiver_settings: Settings, fields: dict, named: str
) -> None:
    body = event(**fields)
    response = post(client, body, sign(body, SECRET))
    assert response.status_code == 422
    assert f"'{named}'" in response.json()["detail"]
    assert rows(receiver_settings) == []


def test_unsafe_sku_is_recorded_as_rejected(
    client: TestClient, receiver_settings: Settings
) -> None:
    body = event(sku="../../etc/passwd")
    response = post(client, body, sign(body, SECRET))
    assert (response.status_code, response.json()["error"]) == (422, "INVALID_SKU")
    (row,) = rows(receiver_settings)
    assert row.status == "REJECTED" and row.partition_key is None
    # Sent again as a new delivery, it is refused again, for the same reason.
    again = post(client, body, sign(body, SECRET, delivery_id="another"))
    assert (again.status_code, again.json()) == (422, response.json())
    assert len(rows(receiver_settings)) == 1


def test_deleted_and_unknown_events_are_recorded_not_processed(
    client: TestClient, receiver_settings: Settings
) -> None:
    for name in ("image.deleted", "image.renamed"):
        body = event(event=name)
        response = post(client, body, sign(body, SECRET))
        assert response.status_code == 202 and response.json()["status"] == "ignored"
    assert [r.status for r in rows(receiver_settings)] == ["IGNORED", "IGNORED"]


def test_max_images_per_sku_is_enforced_with_a_reason(
    receiver_settings: Settings,
) -> None:
    limited = Settings(**{**receiver_settings.__dict__, "max_images_per_sku": 1})
    with TestClient(create_app(with_jms(limited))) as client:
        first = event(sha256="11" * 32)
        second = event(sha256="22" * 32)
        assert post(client, first, sign(first, SECRET)).status_code == 202
        response = post(client, second, sign(second, SECRET))
        assert (response.status_code, response.json()["error"]) == (422, "MAX_IMAGES_PER_SKU")
        assert "limit 1" in response.json()["detail"]
    # The SKU has room again; the refused photo stays refused (it was answered for good).
    roomy = Settings(**{**receiver_settings.__dict__, "max_images_per_sku": 5})
    with TestClient(create_app(with_jms(roomy))) as client:
        again = post(client, second, sign(second, SECRET))
        assert (again.status_code, again.json()["error"]) == (422, "MAX_IMAGES_PER_SKU")
    assert [r.status for r in rows(receiver_settings)] == ["ACCEPTED", "REJECTED"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"event": "image.created", "sku": "A", "n": ' + b"9" * 5000 + b"}",
        b'{"event": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b"[" * 100_000,
        b'{"event": "image.created", "sku": "A", "imageUrl": "https://x.test/1.jpg", '
        b'"sha256": "' + b"ab" * 32 + b'", "score": NaN}',
        b'{"event": "image.created", "sku": "A", "n": Infinity}',
        b'{"event": "image.created", "sku": "A", "n": -Infinity}',
        b"\xff\xfe not utf-8",
    ],
    ids=["huge-int", "deep", "deeper-unclosed", "nan", "infinity", "minus-infinity", "bytes"],
)
def test_hostile_json_is_malformed_not_a_server_error(
    receiver_settings: Settings, body: bytes
) -> None:
    with TestClient(create_app(with_jms(receiver_settings, max_body_bytes=1_000_000))) as c:
        response = post(c, body, sign(body, SECRET))
    assert (response.status_code, response.json()["error"]) == (400, "MALFORMED_JSON")
    assert rows(receiver_settings) == []


@pytest.mark.parametrize("field", ["sku", "event", "imageUrl", "extra"])
def test_a_nul_character_is_refused_the_same_on_both_databases(
    client: TestClient, receiver_settings: Settings, field: str
) -> None:
    value = {"sku": "RING\u0000X", "event": "image.\u0000created"}.get(field)
    body = event()
    if field == "imageUrl":
        body = body.replace(b"1.jpg", b"1\\u0000.jpg")
    elif field == "extra":
        body = body.replace(b'"x": 1', b'"x": "a\\u0000b"')
    else:
        body = event(**{field: value})
    assert b"\\u0000" in body
    response = post(client, body, sign(body, SECRET))
    assert (response.status_code, response.json()["error"]) == (422, "INVALID_PAYLOAD")
    assert "NUL" in response.json()["detail"]
    assert rows(receiver_settings) == []


def test_a_sku_with_a_trailing_newline_is_refused(
    client: TestClient, receiver_settings: Settings
) -> None:
    body = event(sku="RING-NL\n")
    response = post(client, body, sign(body, SECRET))
    assert (response.status_code, response.json()["error"]) == (422, "INVALID_SKU")
    assert [(r.status, r.partition_key) for r in rows(receiver_settings)] == [("REJECTED", None)]


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    schema = client.get("/openapi.json").json()
    body = schema["paths"][PATH]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"event", "sku", "imageUrl", "sha256"}


@pytest.fixture
def live_receiver(settings: Settings) -> Iterator[str]:
    with _live(settings) as url:
        yield url


@contextmanager
def _live(settings: Settings, **jms: object) -> Iterator[str]:
    """The receiver under uvicorn on a real port (``jms``: its 3JMS settings changed)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(with_jms(settings, **jms)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_per_sku_limit_holds_under_concurrent_deliveries(
    receiver_settings: Settings,
) -> None:
    """60 photos of one SKU delivered at once to the receiver on a port: exactly the limit
    is accepted, on SQLite and on PostgreSQL, and every other one is refused with its code."""
    limited = Settings(**{**receiver_settings.__dict__, "max_images_per_sku": 10})
    bodies = [event(sha256=f"{i:064x}") for i in range(60)]
    with _live(limited) as url, httpx.Client(base_url=url, timeout=60) as http:

        def deliver(body: bytes) -> tuple[int, str]:
            response = http.post(PATH, content=body, headers=sign(body, SECRET))
            if response.status_code >= 500:
                return response.status_code, response.text[:200]
            return response.status_code, response.json().get("error", "")

        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = list(pool.map(deliver, bodies))
    assert sorted(set(answers)) == [(202, ""), (422, "MAX_IMAGES_PER_SKU")]
    assert answers.count((202, "")) == 10
    assert [r.status for r in rows(receiver_settings)].count("ACCEPTED") == 10


def test_hostile_deliveries_on_a_real_port_get_the_same_answers_on_both_databases(
    receiver_settings: Settings,
) -> None:
    """The receiver under uvicorn: each hostile delivery gets its named 4xx, nothing is
    recorded, and the receiver still records a good delivery afterwards."""
    hostile = [
        (b'{"sku": "A", "n": ' + b"9" * 5000 + b"}", 400, "MALFORMED_JSON"),
        (b"[" * 3000 + b"]" * 3000, 400, "MALFORMED_JSON"),
        (event().replace(b'"x": 1', b'"x": NaN'), 400, "MALFORMED_JSON"),
        (event(sku="RING\u0000X"), 422, "INVALID_PAYLOAD"),
        (event().replace(b"1.jpg", b"1\\u0000.jpg"), 422, "INVALID_PAYLOAD"),
        (event(sku="RING-NL\n"), 422, "INVALID_SKU"),
    ]
    with (
        _live(receiver_settings, max_body_bytes=1_000_000) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        for body, status, code in hostile:
            response = http.post(PATH, content=body, headers=sign(body, SECRET))
            assert (response.status_code, response.json()["error"]) == (status, code), body[:60]
        assert [r.status for r in rows(receiver_settings)] == ["REJECTED"]  # the newline SKU
        good = event()
        assert http.post(PATH, content=good, headers=sign(good, SECRET)).status_code == 202
    assert [r.status for r in rows(receiver_settings)] == ["REJECTED", "ACCEPTED"]


def test_receiver_on_a_real_port(live_receiver: str, settings: Settings) -> None:
    body = event()
    with httpx.Client(base_url=live_receiver, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        response = http.post(PATH, content=body, headers=sign(body, SECRET))
        assert response.status_code == 202
        assert http.post(PATH, content=body, headers={}).status_code == 401
    assert [r.status for r in rows(settings)] == ["ACCEPTED"]


def test_fuzzed_requests_from_the_openapi_schema_never_get_a_5xx(live_receiver: str) -> None:
    import schemathesis
    from hypothesis import settings as hyp_settings

    schema = schemathesis.openapi.from_url(f"{live_receiver}/openapi.json")
    failures, statuses = [], []

    @given(case=schema[PATH]["POST"].as_strategy())
    @hyp_settings(
        max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    def run(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(base_url=live_receiver)
        statuses.append(response.status_code)
        if response.status_code >= 500:
            failures.append((case.body, response.status_code))

    run()
    assert failures == []
    assert len(statuses) >= 30 and set(statuses) <= {200, 202, 400, 401, 413, 422}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@given(
    payload=st.fixed_dictionaries(
        {},
        optional={
            "event": st.sampled_from(["image.created", "image.deleted"]) | st.text(max_size=70),
            "sku": st.text(max_size=300),
            "imageUrl": st.text(max_size=50),
            "sha256": st.text(alphabet="0123456789abcdefABCDEF", min_size=60, max_size=66),
            "extra": json_values,
        },
    )
)
@hsettings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_signed_random_payloads_never_get_a_5xx(client: TestClient, payload: dict) -> None:
    body = json.dumps(payload).encode()
    response = post(client, body, sign(body, SECRET))
    assert response.status_code in (200, 202, 400, 413, 422), response.text
