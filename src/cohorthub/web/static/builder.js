// The segment builder: a nested AND/OR/NOT tree edited in place; the exact size is asked of the
// server (POST /dashboard/segments/preview) shortly after each change. No framework, no build step.
(() => {
  const root = document.getElementById("builder");
  if (!root) return;
  const data = JSON.parse(document.getElementById("builder-data").textContent);
  const T = data.text;
  const csrf = document.body.dataset.csrf;
  const prefix = root.dataset.prefix;
  let uid = 0;
  const id = (p) => `${p}-${++uid}`;

  // Internal tree: {group: "and"|"or", negated, children: []} or {leaf: {...}, negated}.
  function parse(raw, negated = false) {
    if (raw && raw.not) return parse(raw.not, !negated);
    if (raw && (raw.and || raw.or)) {
      const kind = raw.and ? "and" : "or";
      return { group: kind, negated, children: raw[kind].map((c) => parse(c)) };
    }
    const leaf = { ...raw }; delete leaf.cohort_name;
    return { leaf, negated };
  }
  function dump(node) {
    const inner = node.group ? { [node.group]: node.children.map(dump) } : node.leaf;
    return node.negated ? { not: inner } : inner;
  }
  let tree = parse(JSON.parse(root.dataset.initial));
  if (!tree.group) tree = { group: "and", negated: false, children: [tree] };

  function el(tag, attrs = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  function labelled(text, control) {
    const cid = control.id || (control.id = id("f"));
    return el("span", { class: "field" }, el("label", { for: cid }, text, " "), control);
  }
  function select(options, value, onchange, extra = {}) {
    const s = el("select", { ...extra, onchange: (e) => onchange(e.target.value) },
      options.map(([v, text]) => el("option", { value: v, selected: String(v) === String(value) }, text)));
    return s;
  }
  function input(value, onchange, extra = {}) {
    return el("input", { value: value ?? "", ...extra, oninput: (e) => onchange(e.target.value) });
  }
  const ops = (list) => list.map((o) => [o, T[o] || o]);

  function partnerOf(type) { return data.partners.find((p) => `cohort:${p.name}` === type); }
  function typeOf(leaf) { return leaf.type === "cohort" ? `cohort:${leaf.partner}` : leaf.type; }
  function defaults(type) {
    if (type.startsWith("cohort:")) {
      const p = partnerOf(type);
      return { type: "cohort", partner: p.name, cohort_id: p.cohorts[0]?.id || "", op: "includes" };
    }
    return {
      attribute: { type: "attribute", attribute: "country", op: "equals", value: "" },
      custom_attribute: { type: "custom_attribute", attribute: "", data_type: "string", op: "equals", value: "" },
      event: { type: "event", event: "", op: "at_least", count: 1 },
      purchase: { type: "purchase", op: "at_least", count: 1 },
      identity: { type: "identity", field: "external_id", op: "exists" },
      segment: { type: "segment", segment_id: data.segments[0]?.id || "", op: "includes" },
    }[type];
  }
  function typeOptions() {
    return [
      ...data.partners.map((p) => [`cohort:${p.name}`, p.filter_name]),
      ["attribute", T.attribute], ["custom_attribute", T.custom_attribute], ["event", T.event],
      ["purchase", T.purchase], ["identity", T.identity], ["segment", T.segment],
    ];
  }
  const numeric = (op, dataType) => dataType === "number" || /^size_|_days_ago$/.test(op);
  function coerce(leaf, dataType, text) {
    if (dataType === "boolean") return text === "true";
    if (numeric(leaf.op, dataType) || (dataType === "array" && leaf.op === "includes_value" && text !== "" && !isNaN(Number(text)))) return Number(text);
    return text;
  }

  function cohortPicker(leaf) {
    const p = data.partners.find((x) => x.name === leaf.partner) || { cohorts: [] };
    const list = el("select", { size: 5, class: "cohort-list", onchange: (e) => { leaf.cohort_id = e.target.value; changed(); } });
    const search = el("input", { type: "search", class: "cohort-search", autocomplete: "off" });
    const fill = () => {
      const q = search.value.toLowerCase();
      const shown = p.cohorts.filter((c) => c.name.toLowerCase().includes(q) || c.id.toLowerCase().includes(q));
      list.replaceChildren(...(shown.length ? shown.map((c) => el("option", { value: c.id, selected: c.id === leaf.cohort_id }, c.name)) : [el("option", { value: "", disabled: true }, T.no_cohorts)]));
    };
    search.addEventListener("input", fill);
    fill();
    return [labelled(T.search_cohorts, search), labelled(T.cohort, list)];
  }

  function leafControls(node) {
    const leaf = node.leaf;
    const set = (k) => (v) => { leaf[k] = v; changed(); };
    const setRender = (k) => (v) => { leaf[k] = v; changed(true); };
    const type = typeOf(leaf);
    const parts = [labelled(T.filter_type, select(typeOptions(), type, (v) => { node.leaf = defaults(v); changed(true); }, { class: "filter-type" }))];
    if (leaf.type === "cohort") {
      parts.push(labelled(T.operator, select(ops(["includes", "excludes"]), leaf.op, set("op"), { class: "cohort-op" })), ...cohortPicker(leaf));
    } else if (leaf.type === "segment") {
      parts.push(labelled(T.operator, select(ops(["includes", "excludes"]), leaf.op, set("op"))),
        labelled(T.segment, select(data.segments.map((s) => [s.id, s.name]), leaf.segment_id, set("segment_id"))));
    } else if (leaf.type === "attribute" || leaf.type === "custom_attribute") {
      const custom = leaf.type === "custom_attribute";
      const dataType = custom ? leaf.data_type : data.standard[leaf.attribute];
      if (custom) {
        parts.push(labelled(T.attribute, input(leaf.attribute, set("attribute"))),
          labelled(T.data_type, select(Object.keys(data.operators).map((d) => [d, T[d] || d]), leaf.data_type, (v) => { leaf.data_type = v; leaf.op = data.operators[v][0]; delete leaf.value; changed(true); })));
      } else {
        parts.push(labelled(T.attribute, select(Object.keys(data.standard).map((a) => [a, a]), leaf.attribute, (v) => { leaf.attribute = v; leaf.op = data.operators[data.standard[v]][0]; delete leaf.value; changed(true); })));
      }
      parts.push(labelled(T.operator, select(ops(data.operators[dataType]), leaf.op, setRender("op"))));
      if (!["exists", "blank"].includes(leaf.op)) {
        const control = dataType === "boolean"
          ? select([["true", "true"], ["false", "false"]], String(leaf.value ?? true), (v) => { leaf.value = coerce(leaf, dataType, v); changed(); })
          : input(leaf.value, (v) => { leaf.value = coerce(leaf, dataType, v); changed(); }, { type: numeric(leaf.op, dataType) ? "number" : "text" });
        if (dataType === "boolean" && leaf.value === undefined) leaf.value = true;
        parts.push(labelled(T.value, control));
      } else delete leaf.value;
    } else if (leaf.type === "event" || leaf.type === "purchase") {
      if (leaf.type === "event") parts.push(labelled(T.event_name, input(leaf.event, set("event"))));
      else parts.push(labelled(T.product_id, input(leaf.product_id, (v) => { if (v) leaf.product_id = v; else delete leaf.product_id; changed(); })));
      parts.push(labelled(T.operator, select(ops(["at_least", "at_most", "exactly", "first_before", "first_after", "last_before", "last_after"]), leaf.op, (v) => {
        const wasCount = ["at_least", "at_most", "exactly"].includes(leaf.op);
        leaf.op = v;
        const isCount = ["at_least", "at_most", "exactly"].includes(v);
        if (isCount && !wasCount) { delete leaf.time; leaf.count = 1; }
        if (!isCount && wasCount) { delete leaf.count; delete leaf.within_days; leaf.time = ""; }
        changed(true);
      })));
      if (["at_least", "at_most", "exactly"].includes(leaf.op)) {
        parts.push(labelled(T.count, input(leaf.count, (v) => { leaf.count = Number(v); changed(); }, { type: "number", min: 0 })),
          labelled(T.within_days, input(leaf.within_days, (v) => { if (v) leaf.within_days = Number(v); else delete leaf.within_days; changed(); }, { type: "number", min: 1 })));
      } else parts.push(labelled(T.time_value, input(leaf.time, set("time"), { type: "date" })));
    } else if (leaf.type === "identity") {
      parts.push(labelled(T.field, select(data.identity_fields.map((f) => [f, f]), leaf.field, (v) => {
        leaf.field = v;
        if (v === "email_subscribe") { leaf.op = "equals"; leaf.value = data.subscription_states[0]; } else { leaf.op = "exists"; delete leaf.value; }
        changed(true);
      })));
      if (leaf.field === "email_subscribe") parts.push(labelled(T.value, select(data.subscription_states.map((s) => [s, s]), leaf.value, set("value"))));
      else parts.push(labelled(T.operator, select(ops(["exists", "blank"]), leaf.op, set("op"))));
    }
    return parts;
  }

  function negation(node) {
    const box = el("input", { type: "checkbox", checked: node.negated, class: "negate", onchange: (e) => { node.negated = e.target.checked; changed(true); } });
    return labelled(T.not, box);
  }

  function renderNode(node, parent) {
    const remove = parent ? el("button", { type: "button", class: "remove", onclick: () => { parent.children.splice(parent.children.indexOf(node), 1); changed(true); } }, T.remove) : null;
    if (!node.group) return el("div", { class: "row leaf" + (node.negated ? " negated" : "") }, negation(node), ...leafControls(node), remove);
    const kind = select([["and", T.all], ["or", T.any]], node.group, (v) => { node.group = v; changed(true); }, { class: "group-kind" });
    const first = typeOptions()[0][0];
    return el("fieldset", { class: "group" + (node.negated ? " negated" : "") },
      el("legend", {}, T.group),
      el("div", { class: "row" }, negation(node), labelled(T.operator, kind), remove),
      node.children.length ? node.children.map((c) => renderNode(c, node)) : el("p", { class: "muted" }, T.empty_group),
      el("div", { class: "row" },
        el("button", { type: "button", class: "add-filter", onclick: () => { node.children.push({ leaf: defaults(first), negated: false }); changed(true); } }, T.add_filter),
        el("button", { type: "button", class: "add-group", onclick: () => { node.children.push({ group: "and", negated: false, children: [] }); changed(true); } }, T.add_group)));
  }

  const sizeOut = document.getElementById("live-size");
  const errorOut = document.getElementById("builder-error");
  let timer = null, seq = 0;
  function render() {
    const focused = document.activeElement && root.contains(document.activeElement) ? document.activeElement : null;
    const path = focused ? [...root.querySelectorAll("input, select, button")].indexOf(focused) : -1;
    root.replaceChildren(renderNode(tree, null));
    if (path >= 0) root.querySelectorAll("input, select, button")[path]?.focus();
  }
  function changed(rerender = false) {
    if (rerender) render();
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  }
  async function post(path, body) {
    const response = await fetch(`${prefix}${path}`, { method: "POST", headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.message);
    return answer;
  }
  async function refresh() {
    const mine = ++seq;
    sizeOut.textContent = T.computing;
    try {
      const answer = await post("/segments/preview", { filter: dump(tree) });
      if (mine !== seq) return;
      sizeOut.textContent = `${answer.text} ${T.users}`;
      sizeOut.dataset.size = answer.size;
      errorOut.textContent = "";
    } catch (err) {
      if (mine !== seq) return;
      sizeOut.textContent = "—";
      delete sizeOut.dataset.size;
      errorOut.textContent = err.message;
    }
  }
  document.getElementById("segment-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await post("/segments/save", { id: root.dataset.segmentId || null, name: document.getElementById("segment-name").value, filter: dump(tree) });
      window.location.assign(answer.url);
    } catch (err) { errorOut.textContent = err.message; }
  });
  render();
  refresh();
})();
