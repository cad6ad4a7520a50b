// meshctl dashboard's page: polls /api/graph and /api/traces and draws
// them. The server does the arithmetic and the layout; this only places
// boxes and text.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 180, NODE_H = 56;
// The graph shrinks to fit its box, but not below this (then it scrolls).
const MIN_SCALE = 0.75;

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function s(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function cut(text, n) {
  return text.length > n ? text.slice(0, n - 1) + '…' : text;
}

async function getJSON(path) {
  const r = await fetch(path, {cache: 'no-store'});
  if (!r.ok) throw new Error(path + ': ' + r.status + ' ' + r.statusText);
  return r.json();
}

function health(t) {
  if (!t || !t.measured) return 'idle';
  if (t.errorRate >= 0.05) return 'bad';
  if (t.errorRate >= 0.01) return 'warn';
  return 'ok';
}

function warnings(box, list) {
  box.replaceChildren(...(list || []).map(w => h('div', {}, w)));
}

function drawGraph(g) {
  document.getElementById('scope').textContent =
    g.namespace ? 'namespace ' + g.namespace : 'all meshed namespaces';
  warnings(document.getElementById('graph-warnings'), g.warnings);
  const box = document.getElementById('graph');
  if (!g.nodes.length) {
    box.replaceChildren(h('p', {class: 'empty'}, 'No meshed workloads.'));
    return;
  }
  const scale = Math.min(1, Math.max(MIN_SCALE, (box.clientWidth || g.width) / g.width));
  const svg = s('svg', {id: 'graph-svg', width: g.width * scale, height: g.height * scale, viewBox: `0 0 ${g.width} ${g.height}`});
  const marker = s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto'});
  marker.append(s('path', {d: 'M0,0 L10,5 L0,10 z', class: 'arrow'}));
  const defs = s('defs');
  defs.append(marker);
  svg.append(defs);
  const byID = new Map(g.nodes.map(n => [n.id, n]));
  const outDeg = new Map(), inDeg = new Map();
  for (const e of g.edges) {
    if (e.kind !== 'traffic') continue;
    outDeg.set(e.from, (outDeg.get(e.from) || 0) + 1);
    inDeg.set(e.to, (inDeg.get(e.to) || 0) + 1);
  }
  for (const e of g.edges) {
    const a = byID.get(e.from), b = byID.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    // The caption sits above the end of the edge that no other caption
    // shares: at the caller when it calls one Service, else at the Service;
    // a backend's (what the workload served) at the workload.
    let d, lx, ly, anchor;
    if (b.column > a.column) {
      const mx = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
      if (e.kind === 'backend') {
        lx = x2 - 10; ly = y2 - 5; anchor = 'end';
      } else if ((outDeg.get(e.from) || 0) <= (inDeg.get(e.to) || 0)) {
        lx = x1 + 6; ly = y1 - 5; anchor = 'start';
      } else {
        lx = x2 - 10; ly = y2 - 5; anchor = 'end';
      }
    } else { // back to an earlier column: arc over the top
      const top = Math.min(a.y, b.y) - 20;
      d = `M${a.x + NODE_W / 2},${a.y} C${a.x + NODE_W / 2},${top} ${b.x + NODE_W / 2},${top} ${b.x + NODE_W / 2},${b.y}`;
      lx = (a.x + b.x + NODE_W) / 2; ly = top; anchor = 'middle';
    }
    const cls = e.kind === 'backend' ? 'edge backend' : 'edge ' + health(e.traffic);
    const path = s('path', {d, class: cls, 'marker-end': 'url(#arrow)', 'data-from': e.from, 'data-to': e.to});
    path.append(s('title', {}, `${a.name} → ${b.name}` + (e.traffic ? ': ' + e.traffic.label : ' (backend)')));
    svg.append(path);
    if (e.traffic) {
      // "20 rps · 10.0% 5xx · p99 50ms" on two lines: the gap between
      // columns is narrower than the whole caption.
      const parts = e.traffic.label.split(' · ');
      const lines = parts.length > 2 ? [parts.slice(0, 2).join(' · '), parts.slice(2).join(' · ')] : [parts.join(' · ')];
      const text = s('text', {x: lx, y: ly - 13 * (lines.length - 1), 'text-anchor': anchor, class: 'edge-label', 'data-label': e.traffic.label});
      lines.forEach((l, i) => text.append(s('tspan', {x: lx, dy: i ? 13 : 0}, l)));
      svg.append(text);
    }
  }
  for (const n of g.nodes) {
    const grp = s('g', {class: 'node ' + n.kind, 'data-id': n.id, transform: `translate(${n.x},${n.y})`});
    grp.append(s('title', {}, `${n.kind} ${n.namespace}/${n.name}`));
    grp.append(s('rect', {width: NODE_W, height: NODE_H}));
    grp.append(s('text', {x: 10, y: 18, class: 'name'}, cut(n.name, 24)));
    const sub = n.kind === 'service' ? `Service · ${n.namespace}` : `${n.pods} pod${n.pods === 1 ? '' : 's'} · ${n.namespace}`;
    grp.append(s('text', {x: 10, y: 34, class: 'sub'}, cut(sub, 30)));
    if (n.inbound) {
      const t = n.inbound.measured ? 'in ' + n.inbound.label : n.inbound.total + ' requests in';
      grp.append(s('text', {x: 10, y: 49, class: 'sub small'}, cut(t, 36)));
    }
    svg.append(grp);
  }
  box.replaceChildren(svg);
}

function drawTraces(t) {
  warnings(document.getElementById('traces-error'), t.error ? ['Traces not available: ' + t.error] : []);
  const box = document.getElementById('traces');
  if (!t.traces.length) {
    box.replaceChildren(h('p', {class: 'empty'}, t.error ? '' : 'No network-programming traces yet: change an EndpointSlice (scale a Deployment).'));
    return;
  }
  box.replaceChildren(...t.traces.map(tl => {
    const rows = h('div', {class: 'rows'},
      h('div', {class: 'head'}, 'span'), h('div', {class: 'head'}, 'service'),
      h('div', {class: 'head num'}, 'start'), h('div', {class: 'head num'}, 'duration'),
      h('div', {class: 'head'}, '0 … ' + tl.duration));
    for (const r of tl.rows) {
      const label = h('div', {class: 'label', title: r.name + ' ' + r.detail},
        h('span', {class: 'name'}, r.name), h('span', {class: 'subject'}, r.subject));
      if (r.outcome) label.append(h('span', {class: r.error ? 'outcome error' : 'outcome'}, r.outcome));
      label.style.paddingLeft = (r.depth * 1.4) + 'em';
      const bar = h('div', {class: r.error ? 'bar error' : 'bar'});
      bar.style.left = (r.left * 100).toFixed(2) + '%';
      bar.style.width = (r.width * 100).toFixed(2) + '%';
      rows.append(label, h('div', {}, r.service), h('div', {class: 'num'}, r.offset),
        h('div', {class: 'num'}, r.duration), h('div', {class: 'track'}, bar));
    }
    return h('article', {class: 'trace', 'data-trace-id': tl.traceId},
      h('h3', {}, tl.title),
      h('div', {class: 'meta'}, `trace ${tl.traceId} · ${tl.start} · ${tl.duration}`),
      h('p', {class: 'sentence'}, tl.sentence),
      rows);
  }));
}

async function refresh() {
  let next = 5;
  try {
    const [g, t] = await Promise.all([getJSON('api/graph'), getJSON('api/traces')]);
    drawGraph(g);
    drawTraces(t);
    next = g.refreshSeconds || next;
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    document.getElementById('updated').textContent = 'cannot reach meshctl dashboard (' + err.message + ')';
  }
  setTimeout(refresh, next * 1000);
}

refresh();
