"""The jobs database: SQLAlchemy models, the job state machine and the intake log."""
