"""Applying one transition of a state machine to a row, once per idempotency key, with its record on the row's
timeline (`payouts.models.TransitionRecord`). The epoch close and the epoch payout both move this way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from payouts.models import TransitionRecord


def transition_once(
    row: Any,
    records: type[TransitionRecord],
    owner: str,
    *,
    key: str,
    event: str,
    next_state: Callable[[str], str],
    detail: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> bool:
    """Move `row` (locked by the caller; it has a `state`) to `next_state(row.state)` and set `fields`, recording
    the step in `records` under `owner` (the record's foreign key to the row) — unless a step with this key is
    already recorded, in which case nothing changes and False is returned. The state machine is `next_state`'s:
    an illegal step raises there, before anything is written."""
    if records.objects.filter(**{owner: row}, key=key).exists():
        return False
    new_state = next_state(row.state)
    records.objects.create(
        **{owner: row}, key=key, event=event, from_state=row.state, to_state=new_state, detail=detail or {}
    )
    for name, value in (fields or {}).items():
        setattr(row, name, value)
    row.state = new_state
    row.save()
    return True
