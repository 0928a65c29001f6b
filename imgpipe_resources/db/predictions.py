"""The prediction ledger: what was paid for, so nothing is paid for twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select

from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Prediction

ACTIVE = ("starting", "processing")


@dataclass(frozen=True)
class Work:
    """One piece of paid work: a stage applied to an input with a model."""

    key: str
    stage: str
    model: str
    sku: str | None = None
    sha256: str | None = None
    theme: str | None = None


class Ledger:
    """Prediction records in the jobs database; every write commits at once."""

    def __init__(self, url: str) -> None:
        self.url = url

    def latest(self, work_key: str) -> Prediction | None:
        with session_scope(self.url) as session:
            return session.scalars(
                select(Prediction)
                .where(Prediction.work_key == work_key)
                .order_by(Prediction.created_at.desc())
                .limit(1)
            ).first()

    def started(self, work: Work, prediction_id: str, status: str) -> None:
        with session_scope(self.url) as session:
            if session.get(Prediction, prediction_id) is None:
                session.add(
                    Prediction(
                        id=prediction_id,
                        work_key=work.key,
                        stage=work.stage,
                        sku=work.sku,
                        img_sha256=work.sha256,
                        theme=work.theme,
                        model=work.model,
                        status=status,
                        cost_usd=Decimal("0"),
                    )
                )

    def finished(
        self,
        prediction_id: str,
        status: str,
        *,
        predict_time_s: float | None = None,
        cost_usd: float = 0.0,
        output_key: str | None = None,
        error: str | None = None,
    ) -> None:
        with session_scope(self.url) as session:
            row = session.get(Prediction, prediction_id)
            if row is None:
                return
            row.status = status
            row.predict_time_s = predict_time_s
            row.cost_usd = Decimal(str(round(cost_usd, 6)))
            row.output_key = output_key or row.output_key
            row.error = error
            row.completed_at = datetime.now(UTC)

    def stored(self, prediction_id: str, output_key: str) -> None:
        """Where the prediction's output now lives in our storage (Replicate drops it)."""
        with session_scope(self.url) as session:
            row = session.get(Prediction, prediction_id)
            if row is not None:
                row.output_key = output_key

    def spent_today(self) -> float:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with session_scope(self.url) as session:
            total = session.scalar(
                select(func.coalesce(func.sum(Prediction.cost_usd), 0)).where(
                    Prediction.created_at >= today
                )
            )
        return float(total or 0)
