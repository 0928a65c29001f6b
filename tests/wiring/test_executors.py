"""IMGPIPE_EXECUTOR picks one of Dagster's executors; nothing of imgpipe's own."""

import importlib.util

import dagster as dg
import pytest

from imgpipe_assets.environments import ConfigurationError
from imgpipe_assets.environments import executor_for as _executor_for
from imgpipe_resources.settings import Settings


def executor_for(env: dict[str, str]) -> dg.ExecutorDefinition:
    return _executor_for(Settings.from_env(env))


def test_runs_execute_in_process_unless_told_otherwise() -> None:
    assert executor_for({}) is dg.in_process_executor
    assert executor_for({"IMGPIPE_EXECUTOR": "multiprocess"}) is dg.multiprocess_executor


@pytest.mark.skipif(not importlib.util.find_spec("dagster_celery"), reason="no dagster-celery")
def test_celery_reads_its_broker_from_the_environment_not_run_config() -> None:
    env = {"IMGPIPE_EXECUTOR": "celery", "IMGPIPE_CELERY_BROKER": "pyamqp://u:secret@mq//"}
    executor = executor_for(env)
    assert executor.name == "celery_executor"
    # The configured values, as Dagster would record them with a run.
    configured = executor.config_schema._config_fn({})  # type: ignore[attr-defined]
    assert configured["broker"] == {"env": "IMGPIPE_CELERY_BROKER"}
    assert "secret" not in repr(configured)
    assert configured["config_source"]["task_acks_late"] is True


def test_unknown_or_missing_executors_are_named_errors() -> None:
    with pytest.raises(ConfigurationError, match="in_process, multiprocess, celery, k8s"):
        executor_for({"IMGPIPE_EXECUTOR": "threads"})
    if importlib.util.find_spec("dagster_k8s") is None:
        with pytest.raises(ConfigurationError, match=r"\.\[k8s\]"):
            executor_for({"IMGPIPE_EXECUTOR": "k8s"})
