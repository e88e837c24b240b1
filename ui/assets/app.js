// zen ui's own script: draws the graphs (#dag, #lineage) laid out by
// dagre and the metrics chart (#chart) with uPlot, from the JSON each page
// carries in <script type="application/json">, and reloads the page when
// the state ref moves (/api/state). Nothing is fetched from elsewhere.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function readJSON(id) {
    const s = document.getElementById(id);
    return s ? JSON.parse(s.textContent) : null;
  }

  // drawGraph lays out {nodes, edges} left to right with dagre and draws
  // it as SVG in box: a node is <g class="node kind-K status-S"
  // data-node=ID>, wrapped in a link when it has one.
  function drawGraph(box, data) {
    const g = new dagre.graphlib.Graph({ multigraph: true });
    g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 56, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of data.nodes) {
      g.setNode(n.id, { width: Math.max(90, 8 * n.label.length + 24), height: 36, data: n });
    }
    data.edges.forEach((e, i) => g.setEdge(e.from, e.to, { label: e.label || "" }, "e" + i));
    dagre.layout(g);
    const size = g.graph();
    const svg = el("svg", { width: size.width, height: size.height, viewBox: "0 0 " + size.width + " " + size.height, role: "img" });
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: box.id + "-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }, marker);
    for (const id of g.edges()) {
      const e = g.edge(id);
      const d = e.points.map((p, i) => (i ? "L" : "M") + p.x + "," + p.y).join(" ");
      el("path", { d: d, class: "edge", "data-from": id.v, "data-to": id.w, "marker-end": "url(#" + box.id + "-arrow)" }, svg);
      if (e.label) {
        const mid = e.points[Math.floor(e.points.length / 2)];
        const t = el("text", { x: mid.x, y: mid.y - 4, class: "edge-label" }, svg);
        t.textContent = e.label;
      }
    }
    for (const id of g.nodes()) {
      const n = g.node(id);
      let parent = svg;
      if (n.data.href) parent = el("a", { href: n.data.href, class: "node-link" }, svg);
      const grp = el("g", { class: "node kind-" + n.data.kind + (n.data.status ? " status-" + n.data.status : ""), "data-node": id, transform: "translate(" + (n.x - n.width / 2) + "," + (n.y - n.height / 2) + ")" }, parent);
      if (n.data.status) grp.setAttribute("data-status", n.data.status);
      el("rect", { width: n.width, height: n.height, rx: 6, ry: 6 }, grp);
      const t = el("text", { x: n.width / 2, y: n.height / 2 + 4, "text-anchor": "middle" }, grp);
      t.textContent = n.data.label;
      const title = el("title", {}, grp);
      title.textContent = n.data.label + (n.data.status ? " (" + n.data.status + ")" : "");
    }
    box.appendChild(svg);
    box.setAttribute("data-drawn", "true");
  }

  // drawChart draws a zen Plot (series of points against run numbers)
  // with uPlot.
  function drawChart(box, plot) {
    const xs = [...new Set(plot.series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
    const data = [xs];
    for (const s of plot.series) {
      const at = new Map(s.points.map((p) => [p.x, p.y]));
      data.push(xs.map((x) => (at.has(x) ? at.get(x) : null)));
    }
    const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
    const opts = {
      width: Math.min(960, box.clientWidth || 960),
      height: 360,
      scales: { x: { time: false } },
      axes: [{ label: plot.x_label }, { label: plot.y_label }],
      series: [{ label: "run" }].concat(plot.series.map((s, i) => ({ label: s.name, stroke: colors[i % colors.length], width: 2, spanGaps: true, points: { show: true } }))),
    };
    new uPlot(opts, data, box);
    box.setAttribute("data-drawn", "true");
  }

  // watchState reloads the page when /api/state names another version
  // of the state than the one the page was rendered from.
  function watchState() {
    const shown = document.body.getAttribute("data-state");
    if (shown === null) return;
    const poll = () => {
      fetch("/api/state", { cache: "no-store" })
        .then((r) => r.json())
        .then((s) => {
          if (s.version && s.version !== shown) window.location.reload();
        })
        .catch(() => {})
        .finally(() => setTimeout(poll, 2000));
    };
    setTimeout(poll, 2000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const box of document.querySelectorAll(".graph[data-graph]")) {
      const data = readJSON(box.getAttribute("data-graph"));
      if (data && data.nodes.length) drawGraph(box, data);
    }
    for (const box of document.querySelectorAll(".chart[data-plot]")) {
      const plot = readJSON(box.getAttribute("data-plot"));
      if (plot) drawChart(box, plot);
    }
    watchState();
  });
})();
