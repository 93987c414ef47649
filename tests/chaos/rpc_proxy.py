"""A loopback JSON-RPC proxy in front of Anvil, with the faults of a bad RPC node. Product code reaches it only
through `CHAIN_RPC_URL`; the test (and the exchange simulator) keep talking to Anvil directly.

- `hang(methods, count, forward=False)`: the next `count` requests of those methods (every method when empty) are
  held until the client gives up (its timeout), then dropped without an answer: a node that stopped answering.
  With `forward`, each is first passed on to Anvil, which acts on it: the answer is what is lost (a transaction
  that reached the pool while its sender heard nothing).
- `stale(blocks)`: the node lags `blocks` behind the head: `eth_blockNumber` answers head − blocks,
  `eth_getBlockByNumber("latest"/"pending")` that older block, and receipts or logs of the newer blocks are not
  there yet (a receipt mined above the lagging head answers null, `eth_getLogs` is cut at the lagging head, and
  reads at "latest" — nonces, balances, calls — are answered at the lagging head).
- `clear()`: a healthy node again.

Reorgs are Anvil's own (`anvil_reorg`), called on Anvil by the test: the proxy only forwards.

Every request it saw is in `seen` (method names, in order), so a test can wait for the product to have hit a
fault instead of sleeping.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from devnet.ports import free_port

HANG_SECONDS = 60.0  # far beyond any client timeout the tests set; released at once by `clear()` or `close()`


class RpcProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[str] = []
        self.hung: list[str] = []
        self._hang_methods: frozenset[str] = frozenset()
        self._hang_count = 0
        self._hang_forward = False
        self._lag = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._client = httpx.Client(timeout=30)
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="rpc-proxy", daemon=True)

    # ------------------------------------------------------------------------------------------ faults

    def hang(self, methods: Iterable[str] = (), count: int = 1_000_000, *, forward: bool = False) -> None:
        with self._lock:
            self._release.clear()
            self._hang_methods, self._hang_count, self._hang_forward = frozenset(methods), count, forward

    def stale(self, blocks: int) -> None:
        with self._lock:
            self._lag = blocks

    def clear(self) -> None:
        with self._lock:
            self._hang_methods, self._hang_count, self._lag = frozenset(), 0, 0
            self._release.set()

    def reset(self) -> None:
        """Healthy, and nothing seen yet."""
        self.clear()
        with self._lock:
            self.seen.clear()
            self.hung.clear()

    # ------------------------------------------------------------------------------------------ serving

    def _upstream(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return self._client.post(self.upstream, json=body).json().get("result")

    def _answer(self, call: dict[str, Any]) -> dict[str, Any] | None:
        method, params = str(call.get("method")), list(call.get("params") or [])
        with self._lock:
            self.seen.append(method)
            hang = self._hang_count > 0 and (not self._hang_methods or method in self._hang_methods)
            if hang:
                self._hang_count -= 1
                self.hung.append(method)
            lag, forward = self._lag, self._hang_forward
        if hang:
            if forward:
                self._upstream(method, params)
            self._release.wait(HANG_SECONDS)
            return None  # the connection is dropped without an answer
        if lag:
            stale = self._stale(method, params, lag)
            if stale is not None:
                return {"jsonrpc": "2.0", "id": call.get("id"), "result": stale[0]}
        body = {"jsonrpc": "2.0", "id": call.get("id"), "method": method, "params": params}
        answer: dict[str, Any] = self._client.post(self.upstream, json=body).json()
        return answer

    def _stale(self, method: str, params: list[Any], lag: int) -> tuple[Any] | None:
        """The lagging node's answer, in a 1-tuple (its answer may be null); None: forward as it is."""
        head = int(self._upstream("eth_blockNumber", []), 16)
        behind = max(0, head - lag)
        if method == "eth_blockNumber":
            return (hex(behind),)
        if method == "eth_getBlockByNumber" and params and params[0] in ("latest", "pending", "safe", "finalized"):
            return (self._upstream("eth_getBlockByNumber", [hex(behind), *params[1:]]),)
        if method == "eth_getTransactionReceipt":
            receipt = self._upstream(method, params)
            if receipt is not None and int(receipt["blockNumber"], 16) > behind:
                return (None,)
            return (receipt,)
        at_latest = {"eth_getTransactionCount": 1, "eth_getBalance": 1, "eth_call": 1, "eth_getCode": 1}
        if method in at_latest and len(params) > at_latest[method] and params[at_latest[method]] == "latest":
            return (self._upstream(method, [*params[:-1], hex(behind)]),)
        if method == "eth_getLogs" and params:
            query = dict(params[0])
            if "blockHash" in query:
                return None
            from_block = query.get("fromBlock", "earliest")
            if from_block not in ("earliest", "latest", "pending") and int(from_block, 16) > behind:
                return ([],)
            to_block = query.get("toBlock", "latest")
            if to_block in ("latest", "pending") or int(to_block, 16) > behind:
                query["toBlock"] = hex(behind)
            return (self._upstream(method, [query]),)
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = json.loads(raw)
                if isinstance(request, list):
                    answers = [proxy._answer(call) for call in request]
                    if any(a is None for a in answers):
                        self.close_connection = True
                        return
                    out: Any = answers
                else:
                    out = proxy._answer(request)
                    if out is None:
                        self.close_connection = True
                        return
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def start(self) -> RpcProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self.clear()
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


@contextmanager
def rpc_proxy(upstream: str) -> Iterator[RpcProxy]:
    proxy = RpcProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.close()
