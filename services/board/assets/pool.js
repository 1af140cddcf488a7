// The board's 稿件库 Pool tab: the shared content pool as one county's editor sees it. The pool
// answers a county, not staff, so the tab asks for a county token; it lives in this tab's memory
// only (never a cookie, never storage) and goes as a bearer token to /v1/pool/… (docs/pool.md).
// Story text reaches the page as text; only the server's highlights (escaped text with <mark>) are
// put in as HTML.

const $ = (id) => document.getElementById(id);
const pool = { token: null, county: null, filters: {}, cursor: "", opened: null };

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

// Marked-up text from the server: escaped text and <mark> only. Anything else is shown as text.
function marked(html) {
  const span = document.createElement("span");
  const parts = html.split(/(<mark>|<\/mark>)/);
  let inside = null;
  for (const part of parts) {
    if (part === "<mark>") inside = document.createElement("mark");
    else if (part === "</mark>") {
      if (inside) span.append(inside);
      inside = null;
    } else {
      const text = new DOMParser().parseFromString(`<!doctype html><body>${part}`, "text/html").body.textContent;
      (inside ?? span).append(text);
    }
  }
  return span;
}

const CATEGORY = {
  CATEGORY_POLICY: "政策 Policy",
  CATEGORY_CULTURE_TOURISM: "文旅 Culture & tourism",
  CATEGORY_MAJOR_PROJECT: "重大项目 Major project",
  CATEGORY_INDUSTRY: "产业 Industry",
  CATEGORY_LIVELIHOOD: "民生 Livelihood",
  CATEGORY_EMERGENCY: "应急 Emergency",
  CATEGORY_OTHER: "其他 Other",
};
const MEDIA = { video: "视频 Video", image: "图片 Image", audio: "音频 Audio", other: "其他 Other" };

async function call(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { authorization: `Bearer ${pool.token}`, ...(options.headers ?? {}) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body?.error?.message ?? `${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

export function startPool(countyName) {
  pool.countyName = countyName;
  $("pool-login").addEventListener("submit", openPool);
  $("pool-leave").addEventListener("click", leavePool);
  $("pool-search").addEventListener("submit", (event) => {
    event.preventDefault();
    search(false);
  });
  $("pool-more").addEventListener("click", () => search(true));
  $("story-use").addEventListener("click", markUsed);
}

async function openPool(event) {
  event.preventDefault();
  const token = $("pool-token").value.trim();
  $("pool-token").value = "";
  $("pool-login-error").textContent = "";
  pool.token = token;
  try {
    await call("/v1/pool/search?page_size=1");
  } catch (error) {
    pool.token = null;
    $("pool-login-error").textContent =
      error.status === 401 ? "区县令牌无效 · The county token was refused" : `无法打开 · Cannot open the pool (${error.message})`;
    return;
  }
  // A county token names its county (bashu_<county>_<id>_<secret>); the server checked it.
  pool.county = token.split("_")[1] ?? "";
  $("pool-county").textContent = `${pool.countyName(pool.county)} (${pool.county})`;
  $("pool-login").hidden = true;
  $("pool-body").hidden = false;
  pool.filters = {};
  await Promise.all([search(false), trends()]);
}

function leavePool() {
  pool.token = null;
  pool.county = null;
  $("pool-results").replaceChildren();
  $("pool-facets").replaceChildren();
  $("pool-body").hidden = true;
  $("pool-login").hidden = false;
  $("pool-token").focus();
}

function query() {
  const parameters = new URLSearchParams();
  const q = $("pool-q").value.trim();
  if (q) parameters.set("q", q);
  parameters.set("sort", $("pool-sort").value);
  if ($("pool-video").checked) parameters.set("has_video", "true");
  for (const [name, values] of Object.entries(pool.filters)) for (const value of values) parameters.append(name, value);
  parameters.set("page_size", "20");
  return parameters;
}

async function search(more) {
  $("pool-error").textContent = "";
  const parameters = query();
  if (more && pool.cursor) parameters.set("cursor", pool.cursor);
  let answer;
  try {
    answer = await call(`/v1/pool/search?${parameters}`);
  } catch (error) {
    $("pool-error").textContent = error.message;
    return;
  }
  if (!more) $("pool-results").replaceChildren();
  for (const hit of answer.hits) $("pool-results").append(result(hit));
  pool.cursor = answer.nextCursor;
  $("pool-more").hidden = !answer.nextCursor;
  $("pool-total").textContent = `共 ${answer.total} 篇 · ${answer.total} found`;
  facets(answer);
}

function result(hit) {
  const story = hit.story;
  return h(
    "li",
    { class: "pool-hit", "data-id": story.id },
    h("h4", {}, marked(hit.headlineHtml)),
    h("p", { class: "pool-meta" }, `${pool.countyName(story.originCounty)} · ${CATEGORY[story.category] ?? story.category} · v${story.version}`),
    h("p", { class: "pool-snippet" }, marked(hit.snippetHtml)),
    h("button", { type: "button", onclick: () => openStory(story.originCounty, story.id) }, "全文 Full text"),
  );
}

function facets(answer) {
  const groups = [
    ["province", "来源省市 Origin province", answer.provinces, (f) => f.label],
    ["prefecture", "来源地市 Origin prefecture", answer.prefectures, (f) => f.label],
    ["category", "类别 Category", answer.categories, (f) => CATEGORY[f.value] ?? f.value],
  ];
  const sections = groups
    .filter(([, , counts]) => counts.length)
    .map(([name, title, counts, label]) =>
      h(
        "section",
        { class: "facet" },
        h("h4", {}, title),
        h(
          "ul",
          {},
          ...counts.map((count) => {
            const value = name === "category" ? count.value.replace("CATEGORY_", "").toLowerCase() : count.value;
            const on = (pool.filters[name] ?? []).includes(value);
            return h(
              "li",
              {},
              h(
                "button",
                { type: "button", "aria-pressed": String(on), onclick: () => toggle(name, value) },
                `${label(count)} (${count.count})`,
              ),
            );
          }),
        ),
      ),
    );
  const media = answer.media.map((m) => `${MEDIA[m.value] ?? m.value} ${m.count}`).join(" · ");
  if (media) sections.push(h("p", { class: "facet-media" }, `媒体 Media: ${media}`));
  $("pool-facets").replaceChildren(...sections);
}

function toggle(name, value) {
  const values = new Set(pool.filters[name] ?? []);
  if (values.has(value)) values.delete(value);
  else values.add(value);
  pool.filters[name] = [...values];
  search(false);
}

async function openStory(origin, id) {
  let answer;
  try {
    answer = await call(`/v1/pool/stories/${encodeURIComponent(origin)}/${encodeURIComponent(id)}`);
  } catch (error) {
    $("pool-error").textContent = error.message;
    return;
  }
  const story = answer.story;
  pool.opened = { origin, id };
  $("story-title").textContent = story.headline;
  $("story-meta").textContent = [pool.countyName(origin), `v${story.version}`, story.byline].filter(Boolean).join(" · ");
  $("story-body").replaceChildren(...story.body.split("\n").map((line) => h("p", {}, line)));
  $("story-media").replaceChildren(
    ...(story.media ?? []).map((m) => h("li", {}, h("a", { href: m.uri, rel: "noreferrer", target: "_blank" }, `${m.mediaType} ${m.caption ?? ""}`))),
  );
  const usedBy = answer.usedBy ?? [];
  $("story-used").textContent = usedBy.length ? `已被采用 Used by: ${usedBy.map(pool.countyName).join("、")}` : "";
  $("story-use").hidden = origin === pool.county;
  $("story-dialog").showModal();
}

async function markUsed() {
  const { origin, id } = pool.opened ?? {};
  if (!origin) return;
  try {
    const answer = await call("/v1/pool/used", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ originCounty: origin, storyId: id, placement: "值班看板 duty board" }),
    });
    $("story-used").textContent = answer.recorded ? `已标记采用 Marked as used (v${answer.version})` : `已标记过 Already marked (v${answer.version})`;
    // The pool counts the note once it comes back from the bus.
    setTimeout(trends, 1500);
  } catch (error) {
    $("story-used").textContent = error.message;
  }
}

async function trends() {
  let answer;
  try {
    answer = await call("/v1/pool/trends");
  } catch {
    return;
  }
  $("trends-rising").replaceChildren(
    ...answer.rising.map((province) =>
      h(
        "section",
        {},
        h("h4", {}, `${province.label} 上升话题 Rising`),
        province.terms.length
          ? h("ol", {}, ...province.terms.map((t) => h("li", {}, `${t.term} ${t.lastWeek}→${t.thisWeek}`)))
          : h("p", {}, "暂无 None yet"),
      ),
    ),
  );
  $("trends-reused").replaceChildren(...answer.mostReused.map((s) => h("li", {}, `${s.headline} (${s.uses})`)));
  const widest = Math.max(1, ...answer.giveTake.map((g) => Number(g.given) + Number(g.taken)));
  $("trends-givetake").replaceChildren(
    ...answer.giveTake.slice(0, 10).map((g) =>
      h(
        "li",
        {},
        h("span", { class: "bar-label" }, g.name || g.county),
        h("meter", { min: "0", max: String(widest), value: String(g.given), title: `供 given ${g.given}` }),
        h("meter", { min: "0", max: String(widest), value: String(g.taken), title: `采 taken ${g.taken}` }),
        ` ${g.given} / ${g.taken}`,
      ),
    ),
  );
}
