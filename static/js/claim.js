// The campaign audit page's wallet buttons (templates/payouts/campaign_audit.html), as progressive enhancement:
// the page reads the same without this script. With a wallet in the browser (EIP-1193, found by EIP-6963
// discovery, else window.ethereum) "Claim" sends the escrow's `claim` call whose target and calldata the page
// already shows, and "Use my wallet's address" fills the address form with the connected account.
// No dependency; every text is set with textContent (nothing from a wallet is parsed as HTML).

const REJECTED = 4001; // EIP-1193: the user rejected the request
const UNAUTHORIZED = 4100;
const UNKNOWN_CHAIN = 4902; // wallet_switchEthereumChain: the wallet does not know the chain
const PENDING = -32002; // a request of this site is already waiting in the wallet
const DISCOVERY_MS = 300; // how long to wait for EIP-6963 announcements before falling back to window.ethereum

class WalletError extends Error {}

const announced = [];
window.addEventListener("eip6963:announceProvider", (event) => {
  const detail = event.detail;
  if (!detail || !detail.provider || typeof detail.provider.request !== "function") return;
  const uuid = detail.info && detail.info.uuid;
  if (uuid && announced.some((a) => a.info && a.info.uuid === uuid)) return;
  announced.push(detail);
});
window.dispatchEvent(new Event("eip6963:requestProvider"));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function wallet() {
  if (!announced.length) {
    window.dispatchEvent(new Event("eip6963:requestProvider"));
    await sleep(DISCOVERY_MS);
  }
  if (announced.length) return announced[0].provider;
  if (window.ethereum && typeof window.ethereum.request === "function") return window.ethereum;
  throw new WalletError("No wallet found in this browser: install an Ethereum wallet, or send the claim yourself (below).");
}

function plain(error, chainId) {
  if (error instanceof WalletError) return error.message;
  const code = error && error.code;
  if (code === REJECTED) return "Rejected: you declined the request in your wallet. Nothing was sent.";
  if (code === UNKNOWN_CHAIN) return `Wrong chain: your wallet does not know chain ${chainId}. Add it to your wallet, then try again.`;
  if (code === UNAUTHORIZED) return "Your wallet has not allowed this site to use the account: connect it and try again.";
  if (code === PENDING) return "Your wallet already has a request from this page waiting: open your wallet.";
  const text = error && typeof error.message === "string" && error.message ? error.message : String(error);
  return `The wallet could not send it: ${text}`;
}

async function account(provider) {
  const accounts = await provider.request({ method: "eth_requestAccounts" });
  if (!Array.isArray(accounts) || typeof accounts[0] !== "string") throw new WalletError("Your wallet gave no account.");
  return accounts[0];
}

async function onChain(provider, chainId) {
  const want = BigInt(chainId);
  const current = async () => BigInt(await provider.request({ method: "eth_chainId" }));
  if ((await current()) === want) return;
  try {
    await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: "0x" + want.toString(16) }] });
  } catch (error) {
    if (error && (error.code === REJECTED || error.code === UNKNOWN_CHAIN)) throw error;
    throw new WalletError(`Wrong chain: switch your wallet to chain ${chainId}, then try again.`);
  }
  if ((await current()) !== want) throw new WalletError(`Wrong chain: switch your wallet to chain ${chainId}, then try again.`);
}

function say(output, text, kind) {
  output.textContent = text;
  output.className = `claim-status ${kind}`;
}

function sent(output, hash, explorer) {
  output.textContent = "Sent: ";
  output.className = "claim-status sent";
  const node = explorer ? document.createElement("a") : document.createElement("code");
  node.textContent = hash;
  node.className = "hex";
  node.dataset.txHash = hash;
  if (explorer) {
    node.href = `${explorer}/tx/${hash}`;
    node.rel = "noopener noreferrer";
  }
  output.append(node, ". The leaf is paid once it is mined.");
}

async function claim(button) {
  const { chainId, claimTo, claimData, explorer } = button.dataset;
  const output = button.parentElement.querySelector("[data-claim-status]");
  button.disabled = true;
  say(output, "Waiting for your wallet…", "waiting");
  try {
    const provider = await wallet();
    const from = await account(provider);
    await onChain(provider, chainId);
    const hash = await provider.request({ method: "eth_sendTransaction", params: [{ from, to: claimTo, data: claimData }] });
    sent(output, String(hash), explorer);
  } catch (error) {
    say(output, plain(error, chainId), "failed");
    button.disabled = false;
  }
}

async function connect(form, status) {
  status.textContent = "Waiting for your wallet…";
  try {
    const address = await account(await wallet());
    form.elements.address.value = address;
    status.textContent = "";
    form.requestSubmit();
  } catch (error) {
    status.textContent = plain(error, "");
  }
}

for (const button of document.querySelectorAll("button[data-claim]")) {
  button.hidden = false;
  button.addEventListener("click", () => claim(button));
}
const form = document.getElementById("audit-address");
const connectButton = form && form.querySelector("button[data-connect]");
if (connectButton) {
  const status = document.querySelector("[data-wallet-status]");
  connectButton.hidden = false;
  connectButton.addEventListener("click", () => connect(form, status));
}
