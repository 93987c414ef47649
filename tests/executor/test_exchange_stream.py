"""The executor's ccxt.pro class (executor/exchange_stream.py): a request on a live WebSocket connection is sent one
loop turn sooner than ccxt's own `watch` sends it, and otherwise behaves as ccxt's `watch` does."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.pro

from executor.exchange_stream import _stamped

URL = "wss://example.invalid/ws-api/v3"


class FakeConnection:
    """What ccxt's `watch` uses of its WebSocket client: futures by message hash, subscriptions, the connected
    future, `send`, `connect`, `on_error`, `close`."""

    def __init__(self, *, connected: bool, send_error: Exception | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.futures: dict[Any, asyncio.Future[Any]] = {}
        self.subscriptions: dict[Any, Any] = {}
        self.connected: asyncio.Future[bool] = loop.create_future()
        if connected:
            self.connected.set_result(True)
        self.sent: list[Any] = []
        self.errors: list[Exception] = []
        self.send_error = send_error

    def future(self, message_hash: Any) -> asyncio.Future[Any]:
        if message_hash not in self.futures:
            self.futures[message_hash] = asyncio.get_running_loop().create_future()
        return self.futures[message_hash]

    async def send(self, message: Any) -> None:
        if self.send_error is not None:
            raise self.send_error
        self.sent.append(message)

    async def connect(self, session: Any, backoff_delay: Any = 0) -> None:
        self.connected.set_result(True)

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)

    async def close(self, code: int = 1000) -> None:
        return None


async def exchange_with(connection: FakeConnection, cls: type[Any] | None = None) -> Any:
    exchange = (cls or _stamped(ccxt.pro.binance))({"enableRateLimit": False})
    exchange.clients = {URL: connection}
    return exchange


async def turns_until_sent(connection: FakeConnection, limit: int = 10) -> int:
    for turn in range(1, limit + 1):
        await asyncio.sleep(0)
        if connection.sent or connection.errors:
            return turn
    return limit + 1


async def test_a_request_on_a_live_connection_is_written_after_one_loop_turn_where_ccxt_takes_two() -> None:
    ours = FakeConnection(connected=True)
    exchange = await exchange_with(ours)
    future = exchange.watch(URL, "id-1", {"id": "id-1", "method": "order.place"}, "id-1")
    assert await turns_until_sent(ours) == 1
    assert ours.sent == [{"id": "id-1", "method": "order.place"}]
    assert ours.futures["id-1"] is future
    assert not future.done()  # the answer resolves it, as in ccxt
    assert ours.subscriptions == {"id-1": True}
    await exchange.close()

    # ccxt's own class, on the same connection: why the override exists (if ccxt ever sends at once, drop it).
    theirs = FakeConnection(connected=True)
    plain = await exchange_with(theirs, ccxt.pro.binance)
    plain.watch(URL, "id-1", {"id": "id-1", "method": "order.place"}, "id-1")
    assert await turns_until_sent(theirs) == 2
    await plain.close()


async def test_requests_are_written_in_the_order_they_were_made() -> None:
    connection = FakeConnection(connected=True)
    exchange = await exchange_with(connection)
    for n in range(5):
        exchange.watch(URL, f"id-{n}", {"id": f"id-{n}"}, f"id-{n}")
    await turns_until_sent(connection)
    await asyncio.sleep(0)
    assert connection.sent == [{"id": f"id-{n}"} for n in range(5)]
    await exchange.close()


async def test_a_subscription_already_made_is_not_sent_again_and_shares_its_future() -> None:
    connection = FakeConnection(connected=True)
    exchange = await exchange_with(connection)
    first = exchange.watch(URL, "book", {"method": "SUBSCRIBE"}, "book")
    await turns_until_sent(connection)
    again = exchange.watch(URL, "book", {"method": "SUBSCRIBE"}, "book")
    assert again is first
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert connection.sent == [{"method": "SUBSCRIBE"}]
    await exchange.close()


async def test_a_watch_without_a_subscribe_hash_returns_the_pending_future_and_sends_nothing_more() -> None:
    connection = FakeConnection(connected=True)
    exchange = await exchange_with(connection)
    pending = connection.future("orders")
    assert exchange.watch(URL, "orders", {"method": "x"}) is pending
    assert await turns_until_sent(connection, limit=3) == 4  # nothing within three turns
    assert connection.sent == []
    await exchange.close()


async def test_a_failed_send_reaches_the_connections_error_handler_as_in_ccxt() -> None:
    refused = ConnectionError("socket closed")
    connection = FakeConnection(connected=True, send_error=refused)
    exchange = await exchange_with(connection)
    exchange.watch(URL, "id-1", {"id": "id-1"}, "id-1")
    await turns_until_sent(connection)
    assert connection.errors == [refused]
    await exchange.close()


async def test_a_connection_not_up_yet_goes_through_ccxt_and_sends_once_it_is() -> None:
    connection = FakeConnection(connected=False)
    exchange = await exchange_with(connection)
    exchange.watch(URL, "id-1", {"id": "id-1"}, "id-1")
    assert await turns_until_sent(connection) > 1  # connect first, then ccxt's callback and task
    assert connection.sent == [{"id": "id-1"}]
    await exchange.close()
