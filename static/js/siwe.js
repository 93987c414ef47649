// Sign-In with Ethereum on the site's pages (templates/payouts/me.html): the site builds the EIP-4361 message for
// the wallet's account (its domain, chain and a nonce bound to this browser session), the wallet signs it
// (personal_sign), and the site verifies it and signs the session in. No dependency; texts set with textContent.

import { account, plain, wallet } from "./wallet.js";

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || `the site answered ${response.status}`);
  return data;
}

function hexOf(text) {
  return "0x" + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function signIn(status) {
  status.textContent = "Waiting for your wallet…";
  try {
    const provider = await wallet();
    const address = await account(provider);
    const { message } = await post("/auth/siwe/message", { address });
    status.textContent = "Sign the message in your wallet…";
    const signature = await provider.request({ method: "personal_sign", params: [hexOf(message), address] });
    await post("/auth/siwe/sign-in", { message, signature });
    window.location.reload();
  } catch (error) {
    status.textContent = error && error.code !== undefined ? plain(error, "") : `Not signed in: ${error.message || error}`;
  }
}

const signInButton = document.querySelector("button[data-siwe-sign-in]");
if (signInButton) {
  const status = document.querySelector("[data-siwe-status]");
  signInButton.hidden = false;
  signInButton.addEventListener("click", () => signIn(status));
}
const signOutButton = document.querySelector("button[data-siwe-sign-out]");
if (signOutButton) {
  signOutButton.hidden = false;
  signOutButton.addEventListener("click", async () => {
    await post("/auth/siwe/sign-out");
    window.location.reload();
  });
}
