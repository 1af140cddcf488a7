// The duty board's page: signs in, reads the counties once, then follows /board/events (server-sent
// events fed from the bus). No framework and no build: what runs is what is in this file.

import { startPool } from "./pool.js";
import { showCoverage, startCoverage } from "./coverage.js";

const STATES = [
  ["sent", "已发送", "sent", "…"],
  ["received", "已接收", "received", "◐"],
  ["acknowledged", "已确认", "acknowledged", "✔"],
  ["escalated", "已升级", "escalated", "!"],
  ["cancelled", "已取消", "cancelled", "✕"],
  ["expired", "已过期", "expired", "—"],
];
const STATE_LABEL = Object.fromEntries(STATES.map(([key, zh, en]) => [key, `${zh} ${en}`]));
const STATE_MARK = Object.fromEntries(STATES.map(([key, , , mark]) => [key, mark]));
const SEVERITY = { extreme: "特别严重 Extreme", severe: "严重 Severe", moderate: "较重 Moderate", minor: "一般 Minor", unknown: "未知 Unknown" };
const STATUS = { actual: "", exercise: "演练 EXERCISE", test: "测试 TEST", system: "系统 SYSTEM", draft: "草稿 DRAFT" };
const LEVELS = { 1: "初审 Level 1", 2: "复审 Level 2", 3: "终审 Level 3" };
// The server ticks every 5 s; three silent ticks mean the connection is gone.
const SILENCE_MS = 15000;

const $ = (id) => document.getElementById(id);
const board = {
  counties: new Map(), // code → county
  chains: new Map(), // chain key → chain
  selected: null,
  serverOffsetMs: 0,
  source: null,
  lastHeard: 0,
  tilesOf: null, // the chain key and county codes the tiles were drawn for
};

// Builds an element: h("li", {class: "x", dataset: {a: 1}}, "text", child).
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

const serverNow = () => Date.now() + board.serverOffsetMs;
// Every centre and desk is on Beijing time, whatever the clock of the screen showing the board.
const TIME_FORMAT = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai",
  hour12: false,
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const time = (ms) => (ms ? TIME_FORMAT.format(new Date(ms)) : "—");
function since(ms) {
  if (!ms) return "—";
  let seconds = Math.max(0, Math.floor((serverNow() - ms) / 1000));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  seconds %= 60;
  const pad = (n) => String(n).padStart(2, "0");
  return hours ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${minutes}:${pad(seconds)}`;
}
const countyName = (code) => board.counties.get(code)?.name ?? code;
const isActive = (chain) => !chain.cancelled && !(chain.expires_ms && chain.expires_ms <= serverNow());

// ---- signing in and out -------------------------------------------------------------------------

async function start() {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("show-alerts").addEventListener("click", () => showView("alerts"));
  $("show-stories").addEventListener("click", () => showView("stories"));
  $("show-pool").addEventListener("click", () => showView("pool"));
  $("show-coverage").addEventListener("click", () => showView("coverage"));
  startPool(countyName);
  startCoverage(countyName);
  $("show-all").addEventListener("change", () => {
    board.tilesOf = null;
    renderDetail();
  });
  setInterval(everySecond, 1000);
  try {
    const response = await fetch("session", { credentials: "same-origin" });
    if (response.ok) await signedIn(await response.json());
    else showLogin("");
  } catch {
    showLogin("无法连接 · Cannot reach the server");
  }
}

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  $("login-error").textContent = "";
  let response;
  try {
    response = await fetch("session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token }),
    });
  } catch {
    $("login-error").textContent = "无法连接 · Cannot reach the server";
    return;
  }
  $("token").value = "";
  if (response.ok) {
    await signedIn(await response.json());
  } else if (response.status === 401) {
    $("login-error").textContent = "令牌无效 · The token was refused";
  } else {
    const body = await response.json().catch(() => ({}));
    $("login-error").textContent = body?.error?.message ?? `登录失败 · Sign-in failed (${response.status})`;
  }
}

async function signOut() {
  await fetch("session", { method: "DELETE", credentials: "same-origin" });
  showLogin("已退出 · Signed out");
}

function showLogin(message) {
  board.source?.close();
  board.source = null;
  board.chains.clear();
  board.selected = null;
  board.tilesOf = null;
  showCoverage(false);
  for (const id of ["alerts-view", "stories-view", "pool-view", "coverage-view", "views", "who", "alert-detail"]) {
    $(id).hidden = true;
  }
  $("login").hidden = false;
  $("login-error").textContent = message;
  setConnection("idle", "");
  $("token").focus();
}

async function signedIn(who) {
  $("login").hidden = true;
  $("who-name").textContent = `${who.name} (${who.role})`;
  $("who").hidden = false;
  $("views").hidden = false;
  if (board.counties.size === 0) {
    const response = await fetch("counties", { credentials: "same-origin" });
    if (!response.ok) return showLogin("令牌无效 · The token was refused");
    for (const county of await response.json()) board.counties.set(county.code, county);
  }
  showView("alerts");
  connect();
}

function showView(name) {
  for (const view of ["alerts", "stories", "pool", "coverage"]) {
    $(`${view}-view`).hidden = name !== view;
    $(`show-${view}`).setAttribute("aria-pressed", String(name === view));
  }
  showCoverage(name === "coverage");
}

// ---- the live stream ----------------------------------------------------------------------------

function setConnection(state, text) {
  const element = $("connection");
  element.dataset.state = state;
  element.textContent = text;
}

function connect() {
  board.source?.close();
  const source = new EventSource("events");
  board.source = source;
  board.lastHeard = Date.now();
  setConnection("connecting", "连接中 · Connecting…");
  const heard = (handler) => (event) => {
    board.lastHeard = Date.now();
    setConnection("live", "实时 · Live");
    handler(JSON.parse(event.data));
  };
  source.addEventListener("snapshot", heard(onSnapshot));
  source.addEventListener("chain", heard(onChain));
  source.addEventListener("removed", heard(({ key }) => {
    board.chains.delete(key);
    render();
  }));
  source.addEventListener("stories", heard(onStories));
  source.addEventListener("tick", heard(({ now_ms }) => (board.serverOffsetMs = now_ms - Date.now())));
  source.addEventListener("signed-out", (event) => showLogin(`已退出 · Signed out: ${JSON.parse(event.data).reason}`));
  source.onerror = () => {
    if (board.source !== source) return;
    setConnection("lost", "连接中断，正在重连 · Connection lost, reconnecting…");
    // The browser retries by itself unless the server refused the stream (signed out).
    if (source.readyState === EventSource.CLOSED) setTimeout(recover, 2000);
  };
}

// After a refused stream: sign in again if the token is gone, else reconnect.
async function recover() {
  try {
    const response = await fetch("session", { credentials: "same-origin" });
    if (response.status === 401) return showLogin("令牌已失效 · The token is no longer valid");
  } catch {
    // Still unreachable: try the stream again anyway.
  }
  if (board.source) connect();
}

function everySecond() {
  if (board.source && Date.now() - board.lastHeard > SILENCE_MS) {
    setConnection("lost", "连接中断，正在重连 · Connection lost, reconnecting…");
    connect();
  }
  for (const element of document.querySelectorAll("[data-since]")) element.textContent = since(Number(element.dataset.since));
  // An alert that expired while the page was open moves to the ended list.
  const activeNow = [...board.chains.values()].filter(isActive).length;
  if (activeNow !== $("alert-list").childElementCount) renderList();
}

function onSnapshot({ now_ms, chains, stories }) {
  board.serverOffsetMs = now_ms - Date.now();
  board.chains = new Map(chains.map((chain) => [chain.key, chain]));
  onStories(stories);
  render();
}

function onChain(chain) {
  board.chains.set(chain.key, chain);
  render();
}

// ---- the alert view -----------------------------------------------------------------------------

function render() {
  const active = [...board.chains.values()].filter(isActive);
  if (!board.chains.has(board.selected)) board.selected = null;
  if (!board.selected && active.length) board.selected = newestFirst(active)[0].key;
  renderList();
  renderDetail();
}

const newestFirst = (chains) => chains.sort((a, b) => (b.issued_ms ?? 0) - (a.issued_ms ?? 0));

function counts(chain) {
  const result = Object.fromEntries(STATES.map(([key]) => [key, 0]));
  for (const county of chain.counties) result[county.state] = (result[county.state] ?? 0) + 1;
  return result;
}

function badges(chain) {
  const list = [h("span", { class: `badge severity-${chain.severity}` }, SEVERITY[chain.severity] ?? chain.severity)];
  if (STATUS[chain.status]) list.push(h("span", { class: `badge status-${chain.status}` }, STATUS[chain.status]));
  if (chain.msg_type === "update") list.push(h("span", { class: "badge" }, "更新 Update"));
  if (chain.cancelled) list.push(h("span", { class: "badge cancelled" }, "已取消 Cancelled"));
  return list;
}

function alertItem(chain) {
  const tally = counts(chain);
  const select = () => {
    board.selected = chain.key;
    board.tilesOf = null;
    render();
    $("detail-title").focus();
  };
  return h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        class: `alert-item severity-${chain.severity} status-${chain.status}`,
        "aria-pressed": String(chain.key === board.selected),
        dataset: { chain: chain.key },
        onclick: select,
      },
      h("span", { class: "alert-event" }, chain.event || chain.headline || chain.identifier),
      h("span", { class: "badges" }, ...badges(chain)),
      h("span", { class: "alert-meta" }, `${chain.sender_name || chain.sender} · ${time(chain.sent_ms)}`),
      h("span", { class: "alert-meta" }, `确认 acknowledged ${tally.acknowledged}/${chain.counties.length} · 升级 escalated ${tally.escalated}`),
    ),
  );
}

function renderList() {
  const chains = newestFirst([...board.chains.values()]);
  const active = chains.filter(isActive);
  const ended = chains.filter((c) => !isActive(c));
  $("alert-list").replaceChildren(...active.map(alertItem));
  $("ended-list").replaceChildren(...ended.map(alertItem));
  $("ended-count").textContent = ended.length;
  $("no-alerts").hidden = active.length > 0;
}

function renderDetail() {
  const chain = board.chains.get(board.selected);
  $("alert-detail").hidden = !chain;
  if (!chain) return;
  const title = $("detail-title");
  title.textContent = [chain.event, chain.headline].filter(Boolean).join(" · ") || chain.identifier;
  title.tabIndex = -1;
  $("detail-badges").replaceChildren(...badges(chain));
  const facts = [
    ["发布方 Sender", `${chain.sender_name || chain.sender} (${chain.desk})`],
    ["区域 Area", chain.area || "—"],
    ["发送 Sent", time(chain.sent_ms)],
    ["失效 Expires", time(chain.expires_ms)],
    ["紧急程度 Urgency", chain.urgency],
    ["标识 Identifier", chain.identifier],
  ];
  const elapsed = h("dd", { dataset: { since: chain.issued_ms ?? "" } }, since(chain.issued_ms));
  $("detail-facts").replaceChildren(
    h("dt", {}, "已过 Since issue"),
    elapsed,
    ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
  const tally = counts(chain);
  $("state-counts").replaceChildren(
    ...STATES.map(([key]) =>
      h("li", { class: `count state-${key}`, dataset: { state: key } }, h("span", { class: "mark", "aria-hidden": "true" }, STATE_MARK[key]), ` ${STATE_LABEL[key]} `, h("strong", {}, String(tally[key]))),
    ),
    h("li", { class: "count total" }, `合计 Total `, h("strong", {}, String(chain.counties.length))),
  );
  renderTiles(chain);
}

// Tiles keep their place for the whole life of a chain: a state change updates its tile in place,
// so the tile a keyboard user is on keeps the focus.
function renderTiles(chain) {
  const showAll = $("show-all").checked;
  const codes = chain.counties.map((c) => c.code).join(",");
  const byCode = new Map(chain.counties.map((c) => [c.code, c]));
  if (board.tilesOf?.key === chain.key && board.tilesOf.codes === codes && board.tilesOf.showAll === showAll) {
    for (const tile of $("tiles").querySelectorAll("button[data-county]")) paintTile(tile, byCode.get(tile.dataset.county));
    return;
  }
  board.tilesOf = { key: chain.key, codes, showAll };
  const shown = [...board.counties.values()].filter((c) => showAll || byCode.has(c.code)).sort((a, b) => a.code.localeCompare(b.code));
  const provinces = new Map();
  for (const county of shown) {
    const province = provinces.get(county.province_code) ?? provinces.set(county.province_code, { name: county.province_name, prefectures: new Map() }).get(county.province_code);
    const prefecture = province.prefectures.get(county.prefecture_code) ?? province.prefectures.set(county.prefecture_code, { name: county.prefecture_name, counties: [] }).get(county.prefecture_code);
    prefecture.counties.push(county);
  }
  const groups = [...provinces].map(([code, province]) =>
    h(
      "section",
      { class: "province", "aria-label": province.name },
      h("h3", {}, province.name, " ", h("span", { class: "code" }, code)),
      ...[...province.prefectures].map(([prefectureCode, prefecture]) =>
        h(
          "section",
          { class: "prefecture", "aria-label": prefecture.name },
          h("h4", {}, prefecture.name, " ", h("span", { class: "code" }, prefectureCode)),
          h("div", { class: "tile-row" }, ...prefecture.counties.map((county) => tile(county, byCode.get(county.code)))),
        ),
      ),
    ),
  );
  $("tiles").replaceChildren(...groups);
}

function tile(county, status) {
  const element = h(
    "button",
    { type: "button", class: "tile", dataset: { county: county.code }, lang: "zh-CN", onclick: () => status && openCounty(county.code) },
    h("span", { class: "tile-name" }, county.name),
    h("span", { class: "mark", "aria-hidden": "true" }),
  );
  paintTile(element, status);
  return element;
}

function paintTile(element, status) {
  const county = board.counties.get(element.dataset.county);
  const state = status?.state ?? "untargeted";
  element.dataset.state = state;
  element.className = `tile state-${state}`;
  element.disabled = !status;
  const label = status ? STATE_LABEL[state] ?? state : "未发送 not targeted";
  element.title = `${county.pinyin} · ${county.code} · ${label}`;
  element.setAttribute("aria-label", `${county.name} ${county.pinyin}: ${label}`);
  element.querySelector(".mark").textContent = status ? STATE_MARK[state] ?? "" : "";
}

function openCounty(code) {
  const chain = board.chains.get(board.selected);
  const status = chain?.counties.find((c) => c.code === code);
  const county = board.counties.get(code);
  if (!status || !county) return;
  $("dialog-title").textContent = `${county.name} ${county.pinyin} (${code})`;
  const facts = [
    ["状态 State", STATE_LABEL[status.state] ?? status.state],
    ["发送 Sent", time(status.sent_ms)],
    ["接收 Received", time(status.received_ms)],
    ["确认 Acknowledged", time(status.acknowledged_ms)],
    ["确认人 Acknowledged by", status.acknowledged_by || "—"],
    ["录入 Recorded by", status.recorded_by || "本县 the county itself"],
    ["备注 Note", status.note || "—"],
    ["升级步骤 Escalation step", String(status.escalation_step)],
    ["下次升级 Next escalation", time(status.next_deadline_ms)],
  ];
  $("dialog-facts").replaceChildren(...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  $("county-dialog").showModal();
}

// ---- the stories view ---------------------------------------------------------------------------

function onStories(stories) {
  $("stories-problems").textContent = stories.unavailable.join("; ");
  $("held").replaceChildren(
    ...[1, 2, 3].map((level) => h("li", { dataset: { level } }, `${LEVELS[level]}: `, h("strong", {}, String(stories.held_per_level[level] ?? 0)))),
  );
  $("dead-letters").textContent = String(stories.dead_letters);
  $("dead-letters").classList.toggle("alarm", stories.dead_letters > 0);
  const rows = stories.crossings.map((crossing) =>
    h(
      "tr",
      {},
      h("td", {}, time(crossing.published_ms)),
      h("td", {}, `${crossing.story_id} v${crossing.version}`),
      h("td", {}, place(crossing.origin)),
      h("td", {}, ...crossing.receivers.map((code) => h("span", { class: "receiver" }, place(code)))),
    ),
  );
  $("crossings").tBodies[0].replaceChildren(...rows);
  $("no-crossings").hidden = rows.length > 0;
}

function place(code) {
  const county = board.counties.get(code);
  return h("span", { class: `place province-${code.slice(0, 2)}`, title: county ? `${county.pinyin} · ${county.prefecture_name}` : code }, countyName(code));
}

start();
