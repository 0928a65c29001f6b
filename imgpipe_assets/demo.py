"""`imgpipe demo`: sample photos (or yours) through the whole chain, and a contact sheet."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image
from sqlalchemy import select
from tqdm import tqdm

from imgpipe_assets.environments import storage_for
from imgpipe_assets.errors import ChainStalled
from imgpipe_assets.imaging import gates
from imgpipe_assets.imaging.encode import encode
from imgpipe_assets.imaging.pipeline import load_cutout, on_grey
from imgpipe_assets.imaging.samples import PRODUCTS, render_sample
from imgpipe_assets.imaging.segment import U2NetP, load_segmenter
from imgpipe_assets.imaging.sheet import contact_sheet
from imgpipe_assets.ingest import IngestResult, expand, ingest_file
from imgpipe_assets.local_run import Daemon, daemon_alive, local_instance, run_in_flight
from imgpipe_assets.stages.sources import decode_plain
from imgpipe_assets.themes import load_themes
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.jobs import jobs_for_image, requeue_unfinished
from imgpipe_resources.db.migrate import upgrade
from imgpipe_resources.db.models import Job, JobStatus
from imgpipe_resources.settings import Settings
from imgpipe_resources.storage import ObjectStore

Echo = Callable[[str], None]


SAMPLE_PX = 2000  # the samples' size: a product photo large enough not to be enlarged


def write_samples(folder: Path) -> list[tuple[Path, str, str]]:
    """The sample photos as (path, sku, title), rendered once and kept."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for sku, (title, _draw) in PRODUCTS.items():
        path = folder / f"{sku}.jpg"
        if not path.is_file():
            path.write_bytes(render_sample(sku, SAMPLE_PX))
        out.append((path, sku, title))
    return out


def gate_line(verdicts: list[gates.Verdict]) -> str:
    """Each gate's verdict in a line: what the contact sheet and the demo show."""
    flagged = [f"{v.gate} {v.outcome.upper()}" for v in verdicts if v.outcome != "pass"]
    return "gates: " + (", ".join(flagged) if flagged else "all pass")


def dagster_home(settings: Settings) -> Path:
    return settings.instance_dir()


SETTLED = {JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.AWAITING_REVIEW.value}
# With no run in flight and no job moving for this long, the chain has stopped short.
STALL_S = 300


@dataclass
class ChainOutcome:
    """What the chain did with one image: its failed jobs' errors, if any."""

    image: str
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def wait_for_chain(
    settings: Settings,
    instance: dg.DagsterInstance,
    daemon: Daemon,
    keys: list[str],
    themes: int,
) -> dict[str, ChainOutcome]:
    """Wait while the daemon's sensors and runs take ``keys`` through the chain, until each
    of their jobs is DONE, FAILED or AWAITING_REVIEW and no run is in flight."""
    wanted = set(keys)
    total = len(keys) * themes
    last_change, seen = time.monotonic(), None
    with tqdm(total=total, unit="job", desc="imgpipe", leave=True, disable=None) as bar:
        while True:
            daemon.check()
            with session_scope(settings.database_url) as session:
                jobs = list(session.scalars(select(Job).where(Job.partition_key.in_(wanted))))
                state = sorted((j.partition_key, j.theme, j.status) for j in jobs)
                settled = [j for j in jobs if j.status in SETTLED]
                outcomes = {k: ChainOutcome(k) for k in keys}
                for job in settled:
                    if job.status == JobStatus.FAILED.value:
                        outcomes[job.partition_key].errors.append(
                            f"{job.theme}: {job.error_code}: {job.error_message}"
                        )
            bar.update(len(settled) - bar.n)
            # A daemon started here stops when the demo ends: let its runs finish first.
            # One serving the instance anyway may be busy with other work for long.
            if len(settled) >= total and not (daemon.process and run_in_flight(instance)):
                return outcomes
            if state != seen:
                last_change, seen = time.monotonic(), state
            elif time.monotonic() - last_change > STALL_S and not run_in_flight(instance):
                raise ChainStalled(
                    f"the chain stopped with {total - len(settled)} of {total} jobs unfinished "
                    "and no run in flight: see `imgpipe status` and the Dagster UI"
                )
            time.sleep(0.5)


def _picture(store: ObjectStore, key: str | None) -> np.ndarray | None:
    """A stored image for the contact sheet; None (an empty cell) for one that cannot be
    read, such as the truncated photo whose failure the sheet reports."""
    if not key or not store.exists(key):
        return None
    try:
        return decode_plain(store.get(key))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def publication_lines(settings: Settings, keys: list[str]) -> list[str]:
    """What publishing really did: the dry-run outbox, or the Shopify products the
    composites were attached to, with their admin links."""
    if settings.publisher != "shopify":
        return [f"dry-run Shopify outbox: {settings.home / 'outbox'}"]
    with session_scope(settings.database_url) as session:
        published = session.scalars(
            select(Job).where(Job.partition_key.in_(keys), Job.shopify_media_id.is_not(None))
        ).all()
        products = sorted({(j.sku, str(j.shopify_product_id)) for j in published})
    store = settings.shopify.store_domain
    lines = [f"published to Shopify ({store}): {len(published)} media on {len(products)} products"]
    for sku, product in products:
        number = product.rsplit("/", 1)[-1]
        lines.append(f"  {sku:16s} {product}  https://{store}/admin/products/{number}")
    return lines


def run_demo(
    settings: Settings, photos: list[Path], sku: str | None, echo: Echo
) -> tuple[Path, dict[str, ChainOutcome]]:
    echo(f"data directory: {settings.home}")
    load_themes(settings.themes_path)  # a broken theme file stops here, before anything is stored
    upgrade(settings.database_url)
    segmenter = load_segmenter(settings.models_dir)
    if not isinstance(segmenter, U2NetP):
        echo("!" * 72)
        echo("! u2netp weights not found: cutting out with the border-colour FALLBACK.")
        echo("! Run `imgpipe models fetch` for real cut-outs.")
        echo("!" * 72)
    with storage_for(settings).process_config_and_initialize_cm() as store:
        return _run(settings, store, photos, sku, echo)


def _run(
    settings: Settings, store: ObjectStore, photos: list[Path], sku: str | None, echo: Echo
) -> tuple[Path, dict[str, ChainOutcome]]:
    entries: list[tuple[Path, str, str | None]]
    if photos:
        entries = [(p, sku or p.stem, None) for p in expand(photos)]
    else:
        entries = [(p, s, t) for p, s, t in write_samples(settings.home / "samples")]
    results: list[IngestResult] = []
    for path, item_sku, title in entries:
        result = ingest_file(settings, store, path, item_sku, title)
        results.append(result)
        echo(
            f"ingest  {result.status:9s} {result.sku:16s} {path.name}"
            + (f"  ({result.reason})" if result.reason else "")
        )
    keys = [r.partition_key for r in results if r.partition_key]
    if not keys:
        raise SystemExit("no photo was accepted; nothing to run")

    themes = list(load_themes(settings.themes_path).values())
    home = dagster_home(settings)
    if not daemon_alive(local_instance(home)):
        # Nothing works on these photos but the daemon about to start: what an earlier,
        # killed demo left unfinished is due for the reconciliation at its first tick.
        with session_scope(settings.database_url) as session:
            again = requeue_unfinished(session, keys)
        if again:
            echo(f"{again} jobs an earlier run left unfinished are queued again")
    with Daemon(home) as daemon:
        echo(
            "Dagster daemon: "
            + (
                "the one serving this instance"
                if daemon.process is None
                else f"started ({daemon.log})"
            )
        )
        outcomes = wait_for_chain(settings, local_instance(home), daemon, keys, len(themes))

    headers = ["source", "cut-out", *[t.name for t in themes]]
    rows = []
    echo("\ncomposites:")
    with session_scope(settings.database_url) as session:
        for key in keys:
            outcome = outcomes[key]
            jobs = {j.theme: j for j in jobs_for_image(session, key)}
            any_job = next(iter(jobs.values()))
            source = _picture(store, any_job.original_key)
            cut = None
            verdicts = "gates: not run"
            if any_job.mask_key and store.exists(any_job.mask_key):
                stored = load_cutout(store.get(any_job.mask_key))
                if stored is not None:
                    cut = on_grey(stored.rgb, stored.alpha)
                    verdicts = gate_line(gates.grade(stored.stats))
                    echo(f"  {any_job.sku:16s} {verdicts}")
            cells = [source, cut]
            for theme in themes:
                job = jobs.get(theme.name)
                ckey = job.composite_key if job else None
                if job is not None and ckey and store.exists(ckey):
                    state = job.status
                    if state == "AWAITING_REVIEW":
                        state = f"AWAITING_REVIEW: {job.review_reason}"
                    echo(f"  {job.sku:16s} {theme.name:20s} {store.location(ckey)}  [{state}]")
                    cells.append(decode_plain(store.get(ckey)))
                else:
                    cells.append(None)
            label = f"{any_job.sku}  ({key})" + ("" if outcome.ok else "  FAILED")
            label += f"   {verdicts}"
            rows.append((label, cells))
            for error in outcome.errors:
                echo(f"  {key}: {error}")
    settings.home.mkdir(parents=True, exist_ok=True)
    sheet_path = settings.home / "contact-sheet.jpg"
    sheet_path.write_bytes(encode(contact_sheet(headers, rows), "jpeg", 88))
    echo("")
    for line in publication_lines(settings, keys):
        echo(line)
    echo(f"jobs database: {settings.database_url}")
    echo(f"Dagster instance: {dagster_home(settings)} (DAGSTER_HOME for `dagster dev`)")
    return sheet_path, outcomes
