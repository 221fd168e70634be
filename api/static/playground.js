// The playground: forms that call the API and show what a buyer would see. No framework, no build.
"use strict";

const vocabulary = JSON.parse(document.getElementById("vocabulary").textContent);
// Each form's buying signals, in the order they were ticked (oldest first).
const tickedSignals = { recommend: [], sequence: [] };

function fillSelects() {
  for (const select of document.querySelectorAll("select[data-vocabulary]")) {
    if (select.dataset.empty) select.append(new Option(select.dataset.empty, ""));
    for (const value of vocabulary[select.dataset.vocabulary]) select.append(new Option(value, value));
  }
  fillSignals(document.getElementById("signals"), tickedSignals.recommend);
  fillSignals(document.getElementById("seq-signals"), tickedSignals.sequence);
}

function fillSignals(box, ticked) {
  for (const signal of vocabulary.signals) {
    const input = document.createElement("input");
    input.type = "checkbox";
    input.value = signal;
    input.addEventListener("change", () => {
      const at = ticked.indexOf(signal);
      if (input.checked && at < 0) ticked.push(signal);
      if (!input.checked && at >= 0) ticked.splice(at, 1);
    });
    const label = document.createElement("label");
    label.append(input, " " + signal.replaceAll("_", " "));
    box.append(label);
  }
}

function showTab(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.id === "tab-" + name;
    tab.setAttribute("aria-selected", String(selected));
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
  }
}

// Only the fields the user filled in are sent: the API's defaults apply to the rest.
function formValues(ids) {
  const body = {};
  for (const [field, id] of Object.entries(ids)) {
    const value = document.getElementById(id).value.trim();
    if (value !== "") body[field] = value;
  }
  return body;
}

async function callApi(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw data.error;
  return data;
}

function showError(status, error) {
  status.className = "status error";
  status.replaceChildren(error.message || "The request failed.");
  if (error.fields) {
    const list = document.createElement("ul");
    for (const field of error.fields) {
      const item = document.createElement("li");
      const allowed = field.allowed ? " (allowed: " + field.allowed.join(", ") + ")" : "";
      item.textContent = field.field + ": " + field.problem + allowed;
      list.append(item);
    }
    status.append(list);
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function card(item, stepLabel) {
  const li = element("li", "card");
  if (stepLabel) li.append(element("div", "step-label", stepLabel));
  const title = element("h3");
  const link = element("a", "", item.title);
  if (/^https?:\/\//i.test(item.url)) link.href = item.url;
  link.rel = "noopener noreferrer";
  link.target = "_blank";
  title.append(link);
  const meta = element("div", "meta");
  meta.append(
    element("span", "badge asset-type", item.asset_type.replaceAll("_", " ")),
    element("span", "badge language", item.language),
    element("span", "badge score", "score " + item.score.toFixed(3)),
  );
  li.append(title, meta);
  if (item.reasons) li.append(reasons(item.reasons));
  return li;
}

function reasons(values) {
  const list = element("ul", "reasons");
  const entries = Object.entries(values).filter(([, v]) => v !== 0);
  entries.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const largest = Math.max(...entries.map(([, v]) => Math.abs(v)), 1e-9);
  for (const [name, value] of entries) {
    const item = element("li", "reason");
    const bar = element("div", value < 0 ? "bar negative" : "bar");
    bar.style.width = (100 * Math.abs(value)) / largest + "%";
    item.append(element("span", "name", name.replaceAll("_", " ")), bar, element("span", "value", value.toFixed(3)));
    list.append(item);
  }
  return list;
}

function stageText(result) {
  const source = result.stage_source;
  const why = source.kind === "signal" ? "inferred from the signal " + source.signal
    : source.kind === "reading" ? "the stage of the asset being read, " + source.asset
    : source.kind === "given" ? "as given" : "the default, with no stage or signals";
  return "Stage " + result.stage + " (" + why + ") · index version " + result.index_version;
}

async function recommend(event) {
  event.preventDefault();
  const status = document.getElementById("recommend-status");
  const results = document.getElementById("recommend-results");
  const body = formValues({
    segment: "segment", role: "role", stage: "stage", language: "language", query: "query", reading: "reading",
  });
  body.k = Number(document.getElementById("k").value || 5);
  body.signals = tickedSignals.recommend.slice();
  body.explain = true;
  status.className = "status";
  status.textContent = "Ranking…";
  results.replaceChildren();
  try {
    const result = await callApi("/v1/recommendations", body);
    status.textContent = result.items.length ? stageText(result) : "No asset fits this buyer.";
    results.replaceChildren(...result.items.map((item) => card(item)));
  } catch (error) {
    showError(status, error || {});
  }
}

async function sequence(event) {
  event.preventDefault();
  const status = document.getElementById("sequence-status");
  const results = document.getElementById("sequence-results");
  const body = formValues({
    segment: "seq-segment", role: "seq-role", stage: "seq-stage", language: "seq-language", query: "seq-query",
    reading: "seq-reading",
  });
  body.steps = Number(document.getElementById("seq-steps").value || 4);
  body.signals = tickedSignals.sequence.slice();
  status.className = "status";
  status.textContent = "Building the sequence…";
  results.replaceChildren();
  try {
    const result = await callApi("/v1/sequences", body);
    status.textContent = result.steps.length + " emails · first " + stageText(result).replace("Stage", "stage");
    results.replaceChildren(...result.steps.map((s) => card(s.item, "Email " + s.step + " · " + s.stage)));
  } catch (error) {
    showError(status, error || {});
  }
}

fillSelects();
document.getElementById("tab-recommend").addEventListener("click", () => showTab("recommend"));
document.getElementById("tab-sequence").addEventListener("click", () => showTab("sequence"));
document.getElementById("recommend-form").addEventListener("submit", recommend);
document.getElementById("sequence-form").addEventListener("submit", sequence);
