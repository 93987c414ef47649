// Live validation for the creator wizard's steps (templates/campaigns/wizard/): on each change, the step's form is
// posted to its JSON check (`data-check-url`), which answers {"errors": {field: [message]}, "facts": {...}} and
// keeps nothing; each field's errors and the facts beside the fields are shown in place. Without JavaScript the
// same errors come back when the form is submitted. No dependency; every text is set with textContent.

const DEBOUNCE_MS = 150; // a change that moves focus to the next field and changes it too: one check

function lookup(facts, path) {
  return path.split(".").reduce((value, key) => (value == null ? undefined : value[key]), facts);
}

function showErrors(form, errors) {
  for (const box of form.querySelectorAll("[data-field-errors]")) {
    const name = box.dataset.fieldErrors;
    const messages = errors[name] || [];
    const list = box.tagName === "UL" ? box : box.querySelector("ul") || box.appendChild(document.createElement("ul"));
    list.replaceChildren(...messages.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
    if (name === "__all__") box.hidden = messages.length === 0;
    for (const input of form.querySelectorAll(`[name="${CSS.escape(name)}"]`)) {
      if (messages.length) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }
}

function showFacts(form, facts) {
  for (const node of form.querySelectorAll("[data-fact]")) {
    const value = lookup(facts, node.dataset.fact);
    node.textContent = value == null ? "—" : String(value);
  }
  for (const group of form.querySelectorAll("[data-facts]")) {
    group.hidden = lookup(facts, group.dataset.facts) == null;
  }
}

async function check(form, status) {
  const response = await fetch(form.dataset.checkUrl, {
    method: "POST",
    body: new FormData(form), // carries the CSRF token field
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    status.textContent = data.message || `The check did not answer (${response.status}); submitting still checks.`;
    return;
  }
  status.textContent = "";
  showErrors(form, data.errors || {});
  showFacts(form, data.facts || {});
  form.dataset.checked = Object.keys(data.errors || {}).length ? "invalid" : "valid";
}

for (const form of document.querySelectorAll("form[data-check-url]")) {
  const status = document.createElement("p");
  status.className = "check-status";
  status.setAttribute("aria-live", "polite");
  form.append(status);
  let timer;
  let running = Promise.resolve();
  const schedule = (delay) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(() => check(form, status)).catch((error) => {
        status.textContent = `The check failed (${error.message || error}); submitting still checks.`;
      });
    }, delay);
  };
  // On change (a text field changes when it loses focus or Enter is pressed), not on every key: a half-typed
  // address is not an error yet.
  form.addEventListener("change", () => schedule(DEBOUNCE_MS));
}
