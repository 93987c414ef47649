// The campaign page's live depth chart (templates/campaigns/campaign_page.html), as progressive enhancement: the
// server draws the latest book for the first paint; this opens the market's WebSocket
// (/ws/v1/campaigns/<chain>/<address>/depth), redraws the same SVG on each depth.frame, says "live", "stream down"
// or "reconnecting", and reconnects with a growing delay. The geometry is campaigns/domain/depth_chart.py's: the
// axis spans the mid ± twice the band, depth is cumulative quote notional from the best level out. Drawing only:
// the exact figures are the server's. No dependency; no HTML is parsed from a frame.

const WIDTH = 640;
const HEIGHT = 240;
const PAD_LEFT = 8;
const PAD_RIGHT = 8;
const PAD_TOP = 12;
const PAD_BOTTOM = 28;
const SPAN_BANDS = 2;
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

const svg = document.querySelector("[data-depth-chart]");
const status = document.querySelector("[data-stream-status]");
const note = document.querySelector("[data-chart-note]");

function part(name) {
  return svg.querySelector(`[data-part="${name}"]`);
}

function say(text, kind) {
  status.textContent = text;
  status.className = kind;
  status.dataset.state = kind;
}

function levels(raw) {
  if (!Array.isArray(raw)) return [];
  return raw
    .map((level) => [Number(level[0]), Number(level[1])])
    .filter(([price, size]) => Number.isFinite(price) && Number.isFinite(size) && price > 0 && size > 0);
}

function steps(side, edge, x, y) {
  if (!side.length) return ["", 0];
  let total = 0;
  const points = [[x(side[0][0]), y(0)]];
  side.forEach(([price, size], index) => {
    if (index) points.push([x(price), y(total)]);
    total += price * size;
    points.push([x(price), y(total)]);
  });
  points.push([x(edge), y(total)], [x(edge), y(0)]);
  return [`M${points.map(([px, py]) => `${px.toFixed(2)} ${py.toFixed(2)}`).join(" L")} Z`, total];
}

function label(value) {
  return String(Number(value.toPrecision(6)));
}

function draw(frame, bandBps) {
  const mid = Number(frame.mid);
  if (!frame.mid || !Number.isFinite(mid) || mid <= 0) {
    svg.toggleAttribute("hidden", true); // an SVG element has no `hidden` property, only the attribute
    note.hidden = false;
    note.textContent = "No mid: one side of the book is empty.";
    return;
  }
  const band = (mid * bandBps) / 10000;
  const low = Math.max(mid - SPAN_BANDS * band, 0);
  const high = mid + SPAN_BANDS * band;
  const bids = levels(frame.bids).filter(([price]) => price >= low && price <= mid);
  const asks = levels(frame.asks).filter(([price]) => price >= mid && price <= high);
  const plotW = WIDTH - PAD_LEFT - PAD_RIGHT;
  const plotH = HEIGHT - PAD_TOP - PAD_BOTTOM;
  const sum = (side) => side.reduce((acc, [price, size]) => acc + price * size, 0);
  const top = Math.max(sum(bids), sum(asks)) || 1;
  const x = (price) => PAD_LEFT + ((price - low) / (high - low)) * plotW;
  const y = (depth) => PAD_TOP + plotH - (depth / top) * plotH;
  part("bids").setAttribute("d", steps(bids, low, x, y)[0]);
  part("asks").setAttribute("d", steps(asks, high, x, y)[0]);
  const bandLeft = x(mid - band);
  part("band").setAttribute("x", bandLeft.toFixed(2));
  part("band").setAttribute("width", (x(mid + band) - bandLeft).toFixed(2));
  for (const attr of ["x1", "x2"]) part("mid").setAttribute(attr, x(mid).toFixed(2));
  part("mid-label").setAttribute("x", x(mid).toFixed(2));
  part("mid-label").textContent = frame.mid;
  part("low").textContent = label(low);
  part("high").textContent = label(high);
  part("top").textContent = bids.length || asks.length ? label(top) : "";
  svg.dataset.seq = String(frame.seq);
  svg.toggleAttribute("hidden", false);
  note.hidden = true;
}

function connect(delay) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${svg.dataset.wsPath}`);
  let opened = false;
  ws.onopen = () => {
    opened = true;
    say("connected, waiting for the book", "connecting");
  };
  ws.onmessage = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.type === "depth.frame") {
      draw(event, Number(svg.dataset.bandBps));
      say("live", "live");
    } else if (event.type === "depth.down") {
      say("stream down: the last book shown may be stale", "down");
    }
  };
  ws.onclose = () => {
    const next = opened ? FIRST_DELAY_MS : Math.min(delay * 2, MAX_DELAY_MS);
    say(`reconnecting in ${Math.round(next / 1000)} s`, "reconnecting");
    setTimeout(() => connect(next), next);
  };
}

if (svg && status && note && svg.dataset.wsPath && Number(svg.dataset.bandBps) > 0) {
  connect(FIRST_DELAY_MS / 2);
}
