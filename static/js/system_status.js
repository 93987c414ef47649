// Live updates of the admin system status page: heartbeats and worker-side checks over a WebSocket.
(function () {
  "use strict";
  const root = document.getElementById("content-main");
  const wsState = document.getElementById("ws-state");
  const fmt = (iso) => iso.replace("T", " ").slice(0, 19);

  function setHeartbeat(component, at) {
    const body = document.querySelector("#heartbeat-table tbody");
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    let row = body.querySelector(`tr[data-heartbeat="${CSS.escape(component)}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.heartbeat = component;
      row.innerHTML = "<td></td><td class='at'></td>";
      row.firstChild.textContent = component;
      body.appendChild(row);
    }
    row.querySelector(".at").textContent = fmt(at);
  }

  function setComponent(c) {
    const row = document.querySelector(`#status-table tr[data-component="${CSS.escape(c.name)}"]`);
    if (!row) return;
    const state = row.querySelector(".state");
    state.textContent = c.state;
    state.className = `state st-${c.state}`;
    row.querySelector(".detail").textContent = c.detail;
    row.querySelector(".checked-at").textContent = fmt(c.checked_at);
  }

  let delay = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    ws.onopen = () => { wsState.textContent = "connected"; delay = 1000; };
    ws.onclose = () => {
      wsState.textContent = "disconnected, retrying";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
    ws.onmessage = (msg) => {
      const event = JSON.parse(msg.data);
      if (event.type === "system.heartbeat") setHeartbeat(event.component, event.at);
      if (event.type === "system.status") event.components.forEach(setComponent);
    };
  }
  connect();

  document.getElementById("refresh-now").addEventListener("click", () => {
    const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
    fetch(root.dataset.refreshUrl, { method: "POST", headers: { "X-CSRFToken": csrf }, credentials: "same-origin" });
  });
})();
