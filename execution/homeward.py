"""The return leg of an MM order's funds: exchange → custody, with the operator's treasury key (ADR 0014).

A stopped order's holdings on its exchange account (by its own ledger entries) come home one withdrawal per
asset custody holds (`execution.withdrawals` drives each); what custody holds no token for stays on the
exchange with an alert. The order moves stopping → withdrawing_back → settled (or failed, with what is left
named) as its withdrawals allow (`withdrawal.order_event`). Queuing a withdraw-back from the web process is
`execution.operations`' (`mm_order_withdraw_back_request`); this module runs in a worker.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction

from execution import accounts, selectors, services
from execution.domain import mm_order as mm
from execution.domain import withdrawal as wd
from execution.errors import InvalidOrderTransition, OrderRejected, WithdrawalRefused
from execution.funds import custody_wallet_address, is_custody_asset
from execution.models import ExchangeAccount, ExchangeWithdrawal, MMOrder
from execution.withdrawals import withdrawal_advance
from mrmarket.errors import ApplicationError, NotFound
from mrmarket.exchanges.client import exchange_call
from mrmarket.exchanges.errors import ExchangeUnavailable
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


def homeward(holdings: dict[str, int]) -> dict[str, int]:
    """What of an order's holdings can come home: positive amounts of the assets custody holds. Another asset (a
    fee rebate in BNB, a base custody has no token for) has no address to go to; a negative one (a fee paid from
    a balance the ledger never saw arrive) is nothing to bring back."""
    return {asset: units for asset, units in holdings.items() if units > 0 and is_custody_asset(asset)}


def _note_stranded(order: MMOrder, holdings: dict[str, int]) -> None:
    """Alert once about what stays on the exchange because custody cannot take it: it stays booked to the
    exchange account (reconciliation still counts it) and never blocks the return of the rest."""
    stranded = {a: u for a, u in sorted(holdings.items()) if u > 0 and not is_custody_asset(a)}
    if stranded:
        services.alert_raise(
            "withdrawal_not_possible",
            f"order {order.pk}: custody holds no token for {', '.join(stranded)}; it stays on the exchange account",
            dedup=f"withdrawal-stranded:o{order.pk}:{','.join(stranded)}",
            detail={"order": order.pk, "assets": {a: str(u) for a, u in stranded.items()}},
            warning=True,
            owner_id=order.owner_id,
        )


def withdraw_back_refusal(order: MMOrder, treasury_account_id: int) -> ExchangeAccount:
    """What refuses a withdraw-back before any key is opened; the treasury account when nothing does."""
    if order.state not in (mm.State.STOPPING, mm.State.WITHDRAWING_BACK):
        raise InvalidOrderTransition(
            f"order {order.pk} is {order.state}; stop it before withdrawing its funds back",
            extra={"state": order.state},
        )
    if order.job_id:
        raise OrderRejected(f"order {order.pk} still has job {order.job_id}; its orders must be cancelled first")
    treasury = ExchangeAccount.objects.filter(pk=treasury_account_id, owner_id=order.owner_id).first()
    if treasury is None:
        raise NotFound(f"no exchange account {treasury_account_id} of this order's owner")
    if treasury.role != ExchangeAccount.Role.TREASURY or treasury.status != ExchangeAccount.Status.ACTIVE:
        raise OrderRejected(f"exchange account {treasury.pk} is not an active treasury account")
    return treasury


def mm_order_withdraw_back_queued(*, order_id: int, treasury_account_id: int) -> MMOrder | None:
    """Worker: run a queued withdraw-back. The exchange being down propagates (the task retries); any other
    refusal is the operator's to see, who is no longer waiting on the request: alerted, once per order and reason."""
    try:
        return mm_order_withdraw_back(order_id=order_id, treasury_account_id=treasury_account_id)
    except ExchangeUnavailable:
        raise
    except ApplicationError as exc:
        services.alert_raise(
            "withdraw_back_refused",
            f"order {order_id}: withdraw-back refused: {exc.message}",
            dedup=f"withdraw-back:o{order_id}:{exc.code}",
            detail={"order": order_id, "treasury_account": treasury_account_id, "code": exc.code},
        )
        # Refused, not lost: not queued again by the beat (the operator sees the alert and asks again).
        MMOrder.objects.filter(pk=order_id).update(withdraw_back_requested_at=None)
        return None


def mm_order_withdraw_back(*, order_id: int, treasury_account_id: int) -> MMOrder:
    """Bring a stopped order's funds back to custody with the operator's treasury key (trading keys cannot
    withdraw): every asset the order holds on the exchange by its own ledger entries (the funding asset, and
    what its fills bought), each as its own withdrawal (ADR 0014). The treasury key must belong to the very
    exchange account the order traded on: both keys must be given the same deposit address.

    Safe to call again and concurrently: under the order's row lock each asset gets one withdrawal in flight,
    recorded before the exchange is asked; assets already sent are not asked again, and one whose answer was
    lost is looked up in the exchange's history first. An asset the exchange refuses raises
    `WithdrawalRefused` after the others were sent and booked; the order stays `stopping` until every asset is
    sent, then tracking settles each on its own."""
    order = MMOrder.objects.select_related("exchange_account").get(pk=order_id)
    if order.state == mm.State.SETTLED:
        return order
    treasury = withdraw_back_refusal(order, treasury_account_id)
    trading = order.exchange_account
    _note_stranded(order, selectors.order_holdings(order))
    probe = order.funding_asset
    with exchange_call(trading.exchange, "the deposit addresses of both keys"):
        same = (
            treasury.exchange == trading.exchange
            and accounts.exchange_account_client(account=treasury).fetch_deposit_address(probe)["address"]
            == accounts.exchange_account_client(account=trading).fetch_deposit_address(probe)["address"]
        )
    if not same:
        raise OrderRejected("the treasury key belongs to another exchange account than the order's")
    custody = custody_wallet_address().lower()
    with transaction.atomic():
        locked = MMOrder.objects.select_for_update().get(pk=order_id)
        if locked.state == mm.State.STOPPING and not locked.job_id:
            in_flight = set(
                ExchangeWithdrawal.objects.filter(order=locked, status__in=list(wd.IN_FLIGHT)).values_list(
                    "asset", flat=True
                )
            )
            for asset, units in sorted(homeward(selectors.order_holdings(locked)).items()):
                if asset not in in_flight:
                    ExchangeWithdrawal.objects.create(
                        order=locked,
                        treasury_account=treasury,
                        # Random, so it is never one an exchange already saw (an earlier attempt, another database).
                        client_id=f"mmo{order_id}w{secrets.token_hex(8)}",
                        asset=asset,
                        amount=units,
                        to_address=custody,
                    )
    return _drive_withdrawals(order_id, strict=True)


def mm_order_track_withdrawal(*, order_id: int) -> MMOrder:
    """Beat: advance each withdrawal of the order on its own (a request whose answer was lost is found or sent
    again; a sent one is confirmed or failed), then the order. A failure or an unreachable exchange for one asset
    never holds up another's."""
    return _drive_withdrawals(order_id, strict=False)


def _drive_withdrawals(order_id: int, *, strict: bool) -> MMOrder:
    refused: list[str] = []
    unavailable: list[str] = []
    other: list[ApplicationError] = []
    pending = (
        ExchangeWithdrawal.objects.filter(order_id=order_id, status__in=list(wd.IN_FLIGHT))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for withdrawal_id in list(pending):
        # One asset's trouble is that asset's: the others are still asked, tracked and booked.
        try:
            withdrawal_advance(withdrawal_id=withdrawal_id)
        except WithdrawalRefused as exc:
            refused.append(exc.message)
        except ExchangeUnavailable as exc:
            unavailable.append(exc.message)
        except ApplicationError as exc:  # a revoked treasury key, say: typed, and the others go on
            log.warning("withdrawal_stuck", order_id=order_id, withdrawal=withdrawal_id, code=exc.code)
            other.append(exc)
    order = _advance_order(order_id)
    if strict and refused:
        raise WithdrawalRefused("; ".join(refused), extra={"order": order_id, "state": order.state})
    if strict and other:
        raise other[0]
    if strict and unavailable:
        raise ExchangeUnavailable("; ".join(unavailable), extra={"order": order_id, "state": order.state})
    return order


def _advance_order(order_id: int) -> MMOrder:
    """The order's step on the return leg once its assets allow one (`withdrawal.order_event`), keyed per attempt."""
    with transaction.atomic():
        order = MMOrder.objects.select_for_update().get(pk=order_id)
        if order.job_id:
            return order
        rows = list(ExchangeWithdrawal.objects.filter(order=order).order_by("pk"))
        left = homeward(selectors.order_holdings(order))
        event = wd.order_event(
            order_state=mm.State(order.state), assets=[wd.State(r.status) for r in rows], holdings_left=bool(left)
        )
        if event is None:
            return order
        attempt = selectors.mm_order_attempt(order_id=order_id)
        confirmed = [r for r in rows if r.status == wd.State.CONFIRMED]
        detail: dict[str, Any]
        if event is mm.Event.ORDERS_SETTLED:
            step, detail = "orders-settled", {"withdrawals": [r.client_id for r in rows if r.status == wd.State.SENT]}
        elif event is mm.Event.WITHDRAWAL_ARRIVED:
            step = "withdrawal-arrived"
            detail = {"tx_hashes": [r.tx_hash for r in confirmed], "fees": {r.asset: int(r.fee) for r in confirmed}}
        else:
            step = "withdraw-failed"
            detail = {"reason": f"withdrawals failed; still on the exchange: {sorted(left)}", "left": left}
        return services.mm_order_transition(
            order_id=order_id, event=event, key=mm.step_key(order_id, step, attempt), detail=detail
        )
