// The browser wallet, shared by the pages' small modules (claim.js, siwe.js): an EIP-1193 provider found by
// EIP-6963 discovery, else window.ethereum; its errors turned into plain sentences. No dependency.

const REJECTED = 4001; // EIP-1193: the user rejected the request
const UNAUTHORIZED = 4100;
const UNKNOWN_CHAIN = 4902; // wallet_switchEthereumChain: the wallet does not know the chain
const PENDING = -32002; // a request of this site is already waiting in the wallet
const DISCOVERY_MS = 300; // how long to wait for EIP-6963 announcements before falling back to window.ethereum

export class WalletError extends Error {}

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

export async function wallet(missing = "No wallet found in this browser: install an Ethereum wallet.") {
  if (!announced.length) {
    window.dispatchEvent(new Event("eip6963:requestProvider"));
    await sleep(DISCOVERY_MS);
  }
  if (announced.length) return announced[0].provider;
  if (window.ethereum && typeof window.ethereum.request === "function") return window.ethereum;
  throw new WalletError(missing);
}

export function plain(error, chainId) {
  if (error instanceof WalletError) return error.message;
  const code = error && error.code;
  if (code === REJECTED) return "Rejected: you declined the request in your wallet. Nothing was sent.";
  if (code === UNKNOWN_CHAIN) return `Wrong chain: your wallet does not know chain ${chainId}. Add it to your wallet, then try again.`;
  if (code === UNAUTHORIZED) return "Your wallet has not allowed this site to use the account: connect it and try again.";
  if (code === PENDING) return "Your wallet already has a request from this page waiting: open your wallet.";
  const text = error && typeof error.message === "string" && error.message ? error.message : String(error);
  return `The wallet could not send it: ${text}`;
}

export async function account(provider) {
  const accounts = await provider.request({ method: "eth_requestAccounts" });
  if (!Array.isArray(accounts) || typeof accounts[0] !== "string") throw new WalletError("Your wallet gave no account.");
  return accounts[0];
}

export async function onChain(provider, chainId) {
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
