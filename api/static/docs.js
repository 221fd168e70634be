// A small, dependency-free renderer of /openapi.json: operations, parameters, schemas and examples.
"use strict";

let spec;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function resolve(node) {
  while (node && node.$ref) node = node.$ref.split("/").slice(1).reduce((at, key) => at[key], spec);
  return node;
}

function refName(node) {
  return node && node.$ref ? node.$ref.split("/").pop() : null;
}

// Inline `code` and **bold** in plain text, without ever parsing HTML.
function rich(text) {
  const span = el("span");
  for (const part of text.split(/(`[^`]+`|\*\*[^*]+\*\*)/)) {
    if (part.startsWith("`")) span.append(el("code", part.slice(1, -1)));
    else if (part.startsWith("**")) span.append(el("strong", part.slice(2, -2)));
    else span.append(part);
  }
  return span;
}

// Paragraphs and pipe tables of the document's description.
function markdown(text) {
  const box = el("div");
  for (const block of text.trim().split(/\n\s*\n/)) {
    const lines = block.split("\n");
    const tableAt = lines.findIndex((line) => line.startsWith("|"));
    const text = lines.slice(0, tableAt < 0 ? lines.length : tableAt).join(" ");
    if (text) {
      const paragraph = el("p");
      paragraph.append(rich(text));
      box.append(paragraph);
    }
    if (tableAt < 0) continue;
    const table = el("table");
    for (const line of lines.slice(tableAt)) {
      if (/^\|[-| ]+\|$/.test(line)) continue;
      const row = table.insertRow();
      for (const cell of line.slice(1, -1).split("|")) row.insertCell().append(rich(cell.trim()));
    }
    box.append(table);
  }
  return box;
}

function typeText(node) {
  const name = refName(node);
  if (name) return name;
  node = resolve(node) || {};
  if (node.anyOf || node.oneOf) return (node.anyOf || node.oneOf).map(typeText).join(" | ");
  if (node.type === "array") return typeText(node.items || {}) + "[]";
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (node.type === "object" && node.additionalProperties) return "map of " + typeText(node.additionalProperties);
  return node.type || "any";
}

function constraints(node) {
  node = resolve(node) || {};
  const out = [];
  const names = { minimum: "≥", maximum: "≤", minLength: "min length", maxLength: "max length",
    minItems: "min items", maxItems: "max items", pattern: "pattern", default: "default" };
  for (const [key, label] of Object.entries(names)) {
    if (node[key] !== undefined) out.push(label + " " + JSON.stringify(node[key]));
  }
  if (node.enum) {
    const shown = node.enum.length > 20 ? node.enum.slice(0, 12).concat(["… " + node.enum.length + " in all"]) : node.enum;
    out.push("one of " + shown.join(", "));
  }
  for (const option of node.anyOf || []) out.push(...constraints(option));
  if (node.type === "array" && node.items) out.push(...constraints(node.items).map((c) => "each: " + c));
  return out;
}

function objectOf(node) {
  node = resolve(node);
  if (!node) return null;
  if (node.type === "object" && node.properties) return node;
  if (node.type === "array") return objectOf(node.items);
  for (const option of node.anyOf || node.oneOf || []) {
    const found = objectOf(option);
    if (found) return found;
  }
  return null;
}

// The name of the model a property holds (directly, in a list or as an option), if any.
function modelOf(node) {
  if (!node) return null;
  if (node.$ref) return resolve(node).properties ? refName(node) : modelOf(resolve(node));
  if (node.type === "array") return modelOf(node.items);
  for (const option of node.anyOf || node.oneOf || []) {
    const found = modelOf(option);
    if (found) return found;
  }
  return null;
}

function schemaTree(node, seen = new Set()) {
  const object = objectOf(node);
  const list = el("ul");
  if (!object) {
    list.append(el("li", typeText(node), "type"));
    return list;
  }
  const required = new Set(object.required || []);
  for (const [name, prop] of Object.entries(object.properties)) {
    const item = el("li");
    item.append(el("code", name), " ", el("span", typeText(prop), "type"));
    if (required.has(name)) item.append(" ", el("span", "required", "required"));
    const limits = constraints(prop);
    if (limits.length) item.append(el("span", " (" + limits.join(", ") + ")", "type"));
    const description = prop.description || (resolve(prop) || {}).description;
    if (description) item.append(" — ", rich(description));
    const model = modelOf(prop);
    if (model && !seen.has(model)) item.append(schemaTree(prop, new Set([...seen, model])));
    list.append(item);
  }
  return list;
}

function examples(map) {
  const box = el("div");
  for (const [name, example] of Object.entries(map || {})) {
    const details = el("details");
    details.append(el("summary", name + (example.summary ? " — " + example.summary : "")));
    details.append(el("pre", JSON.stringify(example.value, null, 2)));
    box.append(details);
  }
  return box;
}

function operation(path, method, op) {
  const box = el("section", null, "operation");
  box.id = op.operationId;
  const title = el("h3");
  title.append(el("span", method, "method"), el("code", path), el("span", op.summary));
  if (op.security) title.append(el("span", "🔒 API key (write)", "lock"));
  const description = el("p");
  description.append(rich(op.description));
  box.append(title, description);
  if (op.parameters) {
    box.append(el("h4", "Parameters"));
    const table = el("table");
    const head = table.insertRow();
    for (const h of ["name", "in", "type", "description"]) head.append(el("th", h));
    for (const p of op.parameters) {
      const row = table.insertRow();
      row.insertCell().append(el("code", p.name));
      row.insertCell().append(p.in + (p.required ? ", required" : ""));
      row.insertCell().append([typeText(p.schema), ...constraints(p.schema)].join("; "));
      row.insertCell().append(p.description || "");
    }
    box.append(table, examples(Object.fromEntries(op.parameters.flatMap((p) =>
      Object.entries(p.examples || {}).map(([n, e]) => [n + " (" + p.name + ")", e])))));
  }
  if (op.requestBody) {
    const media = op.requestBody.content["application/json"];
    box.append(el("h4", "Body: " + typeText(media.schema)));
    const tree = schemaTree(media.schema);
    tree.className = "schema";
    box.append(tree, examples(media.examples));
  }
  box.append(el("h4", "Responses"));
  for (const [status, raw] of Object.entries(op.responses)) {
    const response = resolve(raw);
    const details = el("details");
    const [type, media] = Object.entries(response.content || {})[0] || ["", {}];
    const label = status + " " + response.description + (type ? " · " + type + " " + typeText(media.schema || {}) : "");
    details.append(el("summary", label));
    if (media.schema && objectOf(media.schema)) {
      const tree = schemaTree(media.schema);
      tree.className = "schema";
      details.append(tree);
    }
    details.append(examples(media.examples));
    box.append(details);
  }
  return box;
}

async function render() {
  const main = document.getElementById("docs");
  spec = await (await fetch("/openapi.json")).json();
  main.replaceChildren(el("h1", spec.info.title), el("p", "Version " + spec.info.version + " · OpenAPI " + spec.openapi));
  main.append(markdown(spec.info.description));
  const byTag = new Map(spec.tags.map((t) => [t.name, []]));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) byTag.get(op.tags[0]).push(operation(path, method, op));
  }
  for (const tag of spec.tags) {
    main.append(el("h2", tag.name), el("p", tag.description), ...byTag.get(tag.name));
  }
}

render().catch((error) => {
  document.getElementById("docs").textContent = "Could not load /openapi.json: " + error;
});
