// The board's 协同 Coverage tab: the joint coverage plans that are proposed or under way, each
// with its phases in order, who leads each, when it is due, and which are due soon or late
// (docs/coverage.md). Asked for again every few seconds while the tab is open; everything
// reaches the page as text.

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 5000;
const STATUS = {
  open: "进行中 Open",
  due_soon: "即将到期 Due soon",
  late: "逾期 Late",
  delivered: "已交付 Delivered",
};
const STATE = { proposed: "筹备 Proposed", active: "进行中 Active" };

let countyName = (code) => code;
let timer = null;

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

const when = (ms) =>
  ms ? new Date(ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) : "—";

function phaseItem(phase) {
  const late = phase.status === "late" || phase.flagged_late;
  const counts = `${phase.contributions} 篇 stories` + (phase.late_contributions ? `, ${phase.late_contributions} 迟交 late` : "");
  return h(
    "li",
    { class: `phase status-${phase.status}${late ? " late" : ""}`, "data-phase": phase.name, "data-status": phase.status },
    h("strong", {}, `${phase.title} (${phase.name})`),
    " · ",
    h("span", { class: "phase-status" }, STATUS[phase.status] ?? phase.status),
    phase.flagged_late && phase.status !== "late" ? h("span", { class: "phase-flag" }, " · 曾逾期 Was late") : null,
    h(
      "p",
      { class: "phase-meta" },
      `负责 Lead: ${phase.owner ? `${countyName(phase.owner)} ${phase.owner}` : "— 未认领 unclaimed"} · 截止 Due: ${when(phase.due_ms)} · ${counts}`,
    ),
  );
}

function planArticle(plan) {
  const late = plan.phases.filter((p) => p.status === "late").length;
  return h(
    "article",
    { class: "plan", "data-plan": plan.id },
    h("h3", {}, `${plan.topic} `, h("span", { class: "plan-id" }, plan.id)),
    h(
      "p",
      { class: "plan-meta" },
      `发起 Proposer: ${countyName(plan.proposer)} ${plan.proposer} · ${STATE[plan.state] ?? plan.state} · ` +
        `参与 Joined ${plan.accepted}/${plan.invited}` +
        (late ? ` · ${late} 个阶段逾期 late phase${late > 1 ? "s" : ""}` : ""),
    ),
    h("ol", { class: "phases" }, ...plan.phases.map(phaseItem)),
  );
}

async function refresh() {
  let answer;
  try {
    const response = await fetch("coverage", { credentials: "same-origin" });
    if (!response.ok) {
      $("coverage-error").textContent = `无法读取 · Cannot read the plans (${response.status})`;
      return;
    }
    answer = await response.json();
  } catch {
    $("coverage-error").textContent = "无法连接 · Cannot reach the server";
    return;
  }
  $("coverage-error").textContent = "";
  $("coverage-plans").replaceChildren(...answer.plans.map(planArticle));
  $("no-plans").hidden = answer.plans.length > 0;
}

// Starts or stops asking, as the tab is shown or hidden.
export function showCoverage(visible) {
  clearInterval(timer);
  timer = null;
  if (!visible) return;
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

export function startCoverage(names) {
  countyName = names;
}
