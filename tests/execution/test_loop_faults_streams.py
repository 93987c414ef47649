"""The loop faults of test_loop_faults.py again, with the jobs on the exchange's streams: book and account from
its streams, orders over its WebSocket API, REST for reconciliation. The same faults act on both (a fault rule
without a path matches the account's WebSocket API too), and the same outcomes must hold."""

from tests.execution.test_loop_faults import (
    pytestmark,
    test_a_timed_out_report_pull_stores_nothing_and_the_retry_stores_each_once,
    test_a_timed_out_start_changes_nothing_and_the_retry_starts_once,
    test_a_timed_out_stop_keeps_the_job_and_the_retry_releases_it,
    test_an_exchange_timeout_before_the_start_changes_nothing,
    test_exchange_down_while_running_holds_the_order_and_it_resumes,
    test_insufficient_balance_at_start_runs_what_it_can_and_never_spins,
    test_partial_fills_are_booked_exactly_and_once,
)

EXECUTOR_STREAMS = True  # the module-scoped executor of tests/execution/conftest.py reads it

__all__ = [
    "pytestmark",
    "test_a_timed_out_report_pull_stores_nothing_and_the_retry_stores_each_once",
    "test_a_timed_out_start_changes_nothing_and_the_retry_starts_once",
    "test_a_timed_out_stop_keeps_the_job_and_the_retry_releases_it",
    "test_an_exchange_timeout_before_the_start_changes_nothing",
    "test_exchange_down_while_running_holds_the_order_and_it_resumes",
    "test_insufficient_balance_at_start_runs_what_it_can_and_never_spins",
    "test_partial_fills_are_booked_exactly_and_once",
]
