// The campaign audit page's wallet buttons (templates/payouts/campaign_audit.html), as progressive enhancement:
// the page reads the same without this script. With a wallet in the browser (EIP-1193, found by EIP-6963
// discovery, else window.ethereum) "Claim" sends the escrow's `claim` call whose target and calldata the page
// already shows, and "Use my wallet's address" fills the address form with the connected account.
// No dependency; every text is set with textContent (nothing from a wallet is parsed as HTML).

import { account, onChain, plain, wallet } from "./wallet.js";

const NO_WALLET = "No wallet found in this browser: install an Ethereum wallet, or send the claim yourself (below).";

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
    const provider = await wallet(NO_WALLET);
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
    const address = await account(await wallet(NO_WALLET));
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
