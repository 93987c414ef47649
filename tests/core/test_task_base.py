"""RetryingTask, the one retry policy: which tasks use it with which outages, and what a retry and a final
failure do."""

from __future__ import annotations

from typing import Any

import pytest
from celery import shared_task

from campaigns import tasks as campaign_tasks
from execution import tasks as execution_tasks
from mrmarket import tasks as core_tasks
from mrmarket.exchanges.errors import ExchangeUnavailable
from mrmarket.tasks import RetryingTask

EXECUTION_RETRIED = (
    "reprobe_exchange_key",
    "track_deposit",
    "fund_order",
    "track_withdrawal",
    "withdraw_back",
    "reconcile",
    "start_job",
    "sync_job",
    "revoke_job",
    "wind_down",
)


@pytest.mark.parametrize("attr", EXECUTION_RETRIED)
def test_execution_tasks_retry_the_outside_worlds_outages(attr: str) -> None:
    task: Any = getattr(execution_tasks, attr)
    assert isinstance(task, execution_tasks.ExecutionTask)
    assert task.name == f"execution.{attr}"
    assert task.autoretry_for == (ExchangeUnavailable, ConnectionError)
    assert (task.retry_backoff, task.retry_jitter, task.max_retries, task.ignore_result) == (True, True, 5, True)


def test_the_chain_indexer_retries_a_node_that_refused_or_timed_out() -> None:
    task: Any = campaign_tasks.index_chain
    assert isinstance(task, RetryingTask)
    assert task.name == "campaigns.index_chain"
    assert task.autoretry_for == (ConnectionError, TimeoutError)
    assert (task.retry_backoff, task.max_retries, task.ignore_result) == (True, 5, True)


def test_the_status_refresh_keeps_its_own_bounds() -> None:
    task: Any = core_tasks.refresh_system_status
    assert isinstance(task, RetryingTask)
    assert task.autoretry_for == (ConnectionError,)
    assert (task.retry_backoff, task.max_retries) == (True, 3)


calls: list[int] = []


@shared_task(base=RetryingTask, name="tests.core.always_refused", max_retries=2, retry_backoff=False)
def always_refused(order_id: int) -> None:
    calls.append(order_id)
    raise ConnectionError("refused by https://user:pw@rpc.example/v3/SECRET-KEY")


@shared_task(base=RetryingTask, name="tests.core.broken")
def broken() -> None:
    calls.append(0)
    raise ValueError("not an outage")


def test_an_outage_is_retried_then_the_failure_logged_without_arguments_or_text(json_logs: Any) -> None:
    calls.clear()
    result = always_refused.apply(args=(7,))
    assert isinstance(result.result, ConnectionError)
    assert calls == [7, 7, 7]  # the first run and max_retries retries
    (event,) = json_logs.events("task_failed")
    assert event["task_name"] == "tests.core.always_refused"
    assert event["error_type"] == "ConnectionError"
    assert event["retries"] == 2
    assert "SECRET-KEY" not in str(event)
    assert not {"args", "kwargs", "order_id", "error", "message"} & set(event)
    assert 7 not in event.values()


def test_an_error_that_is_not_an_outage_is_not_retried(json_logs: Any) -> None:
    calls.clear()
    broken.apply()
    assert calls == [0]
    (event,) = json_logs.events("task_failed")
    assert (event["error_type"], event["retries"]) == ("ValueError", 0)
