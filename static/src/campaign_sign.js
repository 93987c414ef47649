// The wizard's last step: the creator's own wallet signs approve (when the allowance is short) and
// create-and-fund, exactly the transactions the review page shows. Bundled with viem by `make deps`
// (static/dist/campaign_sign.js, ADR 0020). Nothing is sent before the checks a wallet would otherwise fail
// on: the account is the signed-in creator, the wallet is on the campaign's chain, the balance covers the
// budget, and each call succeeds when simulated; a revert is decoded with the contracts' own error ABI.

import {
  BaseError,
  createPublicClient,
  createWalletClient,
  custom,
  decodeErrorResult,
  erc20Abi,
  formatUnits,
  getAddress,
} from "viem";
import { WalletError, account, onChain, plain, wallet } from "../js/wallet.js";

const POLL_MS = 1000;
const MIRROR_WAIT_MS = 180_000; // the indexer mirrors a new campaign within a few blocks; past this we say so

const section = document.getElementById("campaign-sign");
const button = document.getElementById("campaign-sign-button");
const progress = document.getElementById("campaign-sign-progress");
const errorBox = document.getElementById("campaign-sign-error");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function prepared() {
  const node = document.getElementById("campaign-prepared");
  const data = node && JSON.parse(node.textContent);
  if (!data || !Array.isArray(data.transactions) || !data.transactions.length) {
    throw new WalletError("This page holds no transactions to sign: reload the review step.");
  }
  return data;
}

function step(text) {
  const item = document.createElement("li");
  item.textContent = text;
  progress.append(item);
  return {
    update(more) {
      item.textContent = more;
    },
    done(more) {
      item.textContent = more;
      item.dataset.state = "done";
    },
  };
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

const amount = (units, token) => `${formatUnits(BigInt(units), token.decimals)} ${token.symbol}`;

// The contracts' custom errors, said plainly; anything else is named with its arguments.
function revertText(name, args, token) {
  const a = args || [];
  switch (name) {
    case "ERC20InsufficientAllowance":
      return `Insufficient allowance: the campaign may take ${amount(a[1], token)} of yours, the budget is ${amount(a[2], token)}. Approve again.`;
    case "ERC20InsufficientBalance":
      return `Insufficient balance: you hold ${amount(a[1], token)}, the budget is ${amount(a[2], token)}.`;
    case "InsufficientBalance":
      return `Insufficient balance: you hold ${amount(a[0], token)}, the budget is ${amount(a[1], token)}.`;
    case "InvalidParams":
      return `The factory refused the campaign's parameters: ${a[0]}. Go back and correct them.`;
    case "FailedDeployment":
      return "The factory could not create the campaign: one with these parameters and salt may already exist. Start over.";
    case "FeeOnTransferToken":
      return "The token keeps part of every transfer: the escrow refuses such tokens, because the budget would not arrive whole.";
    case "AlreadyFunded":
      return "This campaign is already funded: nothing more to do.";
    default:
      return `The contract refused it: ${name}(${a.map(String).join(", ")}).`;
  }
}

function decodedRevert(error, abi, token) {
  if (!(error instanceof BaseError)) return null;
  const raw = error.walk((e) => typeof e.data === "string" && e.data.startsWith("0x") && e.data.length >= 10);
  if (!raw) return null;
  try {
    const { errorName, args } = decodeErrorResult({ abi, data: raw.data });
    return revertText(errorName, args, token);
  } catch {
    return `The contract refused it with an error this page does not know (${raw.data.slice(0, 10)}).`;
  }
}

function message(error, data) {
  const decoded = decodedRevert(error, data.errors_abi, data.token);
  if (decoded) return decoded;
  if (error instanceof BaseError) {
    const rejected = error.walk((e) => e.code === 4001);
    if (rejected) return plain(rejected, data.chain_id);
    if (error.walk((e) => e.name === "InsufficientFundsError")) {
      return "Your account has not enough of the chain's coin to pay for gas.";
    }
    const coded = error.walk((e) => typeof e.code === "number");
    if (coded) return plain(coded, data.chain_id);
    return `The wallet could not send it: ${error.shortMessage || error.message}`;
  }
  return plain(error, data.chain_id);
}

async function send(clients, from, tx, data) {
  const row = step(`${tx.purpose}: checking…`);
  const request = { account: from, to: getAddress(tx.to), data: tx.data, value: BigInt(tx.value || "0") };
  await clients.public.call(request); // a revert here is decoded before the wallet is asked anything
  row.update(`${tx.purpose}: waiting for your wallet…`);
  const hash = await clients.wallet.sendTransaction({ ...request, chain: null });
  row.update(`${tx.purpose}: sent (${hash}), waiting to be mined…`);
  const receipt = await clients.public.waitForTransactionReceipt({ hash, pollingInterval: POLL_MS });
  if (receipt.status !== "success") throw new WalletError(`${tx.purpose}: the transaction ${hash} reverted.`);
  row.done(`${tx.purpose}: done in block ${receipt.blockNumber} (${hash})`);
  return hash;
}

async function awaitMirror(data) {
  const row = step("Waiting for this site to see the new campaign on chain…");
  const deadline = Date.now() + MIRROR_WAIT_MS;
  while (Date.now() < deadline) {
    const response = await fetch(data.status_url, { headers: { Accept: "application/json" } });
    if (response.ok) {
      const status = await response.json();
      if (status.mirrored) {
        row.done("The campaign is live: opening its page.");
        window.location.assign(status.campaign_url || data.campaign_url);
        return;
      }
    }
    await sleep(POLL_MS);
  }
  row.update(`The campaign is on chain at ${data.predicted_address}; this site has not mirrored it yet. Its page: ${data.campaign_url}`);
}

async function sign() {
  const data = prepared();
  const provider = await wallet();
  const from = getAddress(await account(provider));
  if (from !== getAddress(data.creator)) {
    throw new WalletError(`Your wallet's account is ${from}, but you signed in as ${getAddress(data.creator)}: switch accounts in your wallet.`);
  }
  await onChain(provider, data.chain_id);
  const transport = custom(provider);
  const clients = { wallet: createWalletClient({ account: from, transport }), public: createPublicClient({ transport }) };
  const token = getAddress(data.token.address);
  const budget = BigInt(data.budget);
  const balance = await clients.public.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [from] });
  if (balance < budget) {
    throw new WalletError(`Insufficient balance: you hold ${amount(balance, data.token)}, the budget is ${amount(budget, data.token)}.`);
  }
  const existing = await clients.public.getCode({ address: getAddress(data.predicted_address) });
  if (existing && existing !== "0x") {
    step("The campaign already exists on chain (sent before): nothing to sign.").done("The campaign already exists on chain (sent before): nothing to sign.");
    await awaitMirror(data);
    return;
  }
  for (const tx of data.transactions) {
    if (tx.kind === "approve") {
      const spender = getAddress(data.predicted_address);
      const allowance = await clients.public.readContract({ address: token, abi: erc20Abi, functionName: "allowance", args: [from, spender] });
      if (allowance >= budget) {
        step(`${tx.purpose}: already approved (${amount(allowance, data.token)}).`).done(`${tx.purpose}: already approved (${amount(allowance, data.token)}).`);
        continue;
      }
    }
    await send(clients, from, tx, data);
  }
  await awaitMirror(data);
}

if (section && button) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    errorBox.hidden = true;
    progress.replaceChildren();
    try {
      await sign();
    } catch (error) {
      let data = null;
      try {
        data = prepared();
      } catch {
        // the page's own data is broken: the error below says so
      }
      showError(data ? message(error, data) : plain(error));
      button.disabled = false;
    }
  });
}
