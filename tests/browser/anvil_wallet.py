"""A browser wallet for tests: an EIP-1193 provider injected before the page loads (announced by EIP-6963 and set
as window.ethereum) whose every request goes to the test process, which forwards it to Anvil. Anvil holds the dev
accounts unlocked, so transactions and signatures are real: `eth_sendTransaction` is mined, `personal_sign`
signs with the account's key. A test can make the wallet decline a method (code 4001), report another chain, or
refuse to switch; `calls` lists every method the page asked for, so a test can assert nothing was sent."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any

_SCRIPT = """(() => {
  const provider = {
    isMrMarketTestWallet: true,
    request: async ({ method, params }) => {
      const sent = JSON.stringify(params === undefined ? [] : params);
      const answer = JSON.parse(await window.mmTestWallet(method, sent));
      const error = answer.error;
      if (error) throw Object.assign(new Error(error.message), { code: error.code, data: error.data });
      return answer.result;
    },
    on: () => {},
    removeListener: () => {},
  };
  window.ethereum = provider;
  const info = {
    uuid: "00000000-0000-4000-8000-00000000a7e1",
    name: "Anvil test wallet",
    icon: "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>",
    rdns: "org.mrmarket.test",
  };
  const detail = Object.freeze({ info, provider });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();"""


@dataclass
class AnvilWallet:
    rpc_url: str
    address: str
    chain_id: int = 31337
    declines: set[str] = field(default_factory=set)  # methods the person "rejects" in the wallet
    wallet_chain_id: int | None = None  # the chain the wallet is on, when it is not the node's
    switch_refused: bool = False
    calls: list[str] = field(default_factory=list)

    def install(self, page: Any) -> None:
        page.expose_function("mmTestWallet", self._handle)
        page.add_init_script(_SCRIPT)

    def sent(self) -> list[str]:
        return [m for m in self.calls if m in {"eth_sendTransaction", "eth_sendRawTransaction"}]

    def _handle(self, method: str, params_json: str) -> str:
        self.calls.append(method)
        params = json.loads(params_json)
        try:
            return json.dumps({"result": self._answer(method, params)})
        except WalletRefusal as refusal:
            return json.dumps({"error": {"code": refusal.code, "message": refusal.message}})
        except NodeError as error:
            return json.dumps({"error": error.payload})

    def _answer(self, method: str, params: list[Any]) -> Any:
        if method in self.declines:
            raise WalletRefusal(4001, "User rejected the request.")
        current = self.wallet_chain_id or self.chain_id
        if method in {"eth_requestAccounts", "eth_accounts"}:
            return [self.address.lower()]  # the wallet answers these itself; the rest go to the node
        if method == "eth_chainId":
            return hex(current)
        if method == "net_version":
            return str(current)
        if method == "wallet_switchEthereumChain":
            if self.switch_refused:
                raise WalletRefusal(4902, f"Unrecognized chain ID {params[0]['chainId']}.")
            if int(params[0]["chainId"], 16) == self.chain_id:
                self.wallet_chain_id = None
            return None
        if self.wallet_chain_id not in (None, self.chain_id) and method == "eth_sendTransaction":
            raise WalletRefusal(4901, "The wallet is on another chain.")
        return self._node(method, params)

    def _node(self, method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        request = urllib.request.Request(self.rpc_url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise NodeError(answer["error"])
        return answer["result"]


class WalletRefusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class NodeError(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("message", "node error"))
        self.payload = payload
