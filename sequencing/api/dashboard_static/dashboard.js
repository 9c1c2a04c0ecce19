// ordo dashboard: draws /v1/dashboard/events (server-sent events) of the replica serving this page.
// No network beyond that replica, no libraries; charts are plain SVG. Events: "snapshot" (the whole
// view), "status" (all but the blocks, every second: also the heartbeat), "commit" (new blocks).
(function () {
  "use strict";

  var BLOCKS_SHOWN = 64;
  var STALE_AFTER = 5000; // ms without any event: reconnect
  var RECONNECT_DELAY = 2000;
  var SVG_NS = "http://www.w3.org/2000/svg";

  var blocks = []; // the newest committed blocks, oldest first
  var committee = []; // the last status's committee (this replica's entry follows commit events)
  var source = null;
  var lastEvent = 0;
  var reconnectTimer = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function setText(id, value) {
    var node = $(id);
    if (node && node.textContent !== String(value)) { node.textContent = String(value); }
  }

  function fmt(value, suffix) {
    return value === null || value === undefined ? "-" : String(value) + (suffix || "");
  }

  function short(hex) { return hex ? hex.slice(0, 12) + "…" : "-"; }

  function setConnection(state) {
    var node = $("connection");
    node.className = state;
    node.textContent = state === "live" ? "live" : state === "lost" ? "reconnecting" : "connecting";
  }

  // -- drawing -------------------------------------------------------------------------------------

  function drawHeader(view) {
    setText("whoami", "replica " + view.replica + (view.chain_id ? " · " + view.chain_id : ""));
    setText("round", view.round);
    setText("height", view.height);
    setText("leader", view.leader === null ? "-" : "replica " + view.leader);
    if (view.down_after !== undefined) { setText("downafter", view.down_after + " s"); }
  }

  function drawCommittee(members) {
    committee = members;
    var box = $("committee");
    var nodes = {};
    Array.prototype.forEach.call(box.children, function (n) { nodes[n.getAttribute("data-replica")] = n; });
    members.forEach(function (m) {
      var card = nodes[String(m.id)];
      if (!card) {
        card = el("div", { "class": "member", "data-replica": m.id });
        box.appendChild(card);
      }
      card.setAttribute("data-state", m.state);
      card.setAttribute("data-leader", m.leader ? "true" : "false");
      card.textContent = "";
      var name = el("div", { "class": "name" }, "replica " + m.id + (m.self ? " (this)" : ""));
      name.appendChild(el("span", { "class": "badge state-" + m.state }, m.state));
      if (m.leader) { name.appendChild(el("span", { "class": "badge leader" }, "leader")); }
      card.appendChild(name);
      card.appendChild(el("div", { "class": "line" },
        "round " + fmt(m.round) + " · height " + fmt(m.height)));
      var link = m.self ? "serving this page" : (m.connected ? "linked" : "no link") +
        (m.heard_ago === null ? " · never heard" : " · heard " + m.heard_ago.toFixed(1) + " s ago") +
        (m.kind ? " (" + m.kind + ")" : "");
      card.appendChild(el("div", { "class": "line" }, link));
      if (m.last_vote) {
        card.appendChild(el("div", { "class": "line" },
          "last vote: round " + m.last_vote.round + " for " + short(m.last_vote.block)));
      }
    });
  }

  function blockNode(b) {
    var node = el("div", {
      "class": "block", "data-height": b.height, "data-kind": b.kind,
      title: "height " + b.height + ", round " + b.round + ", " + b.txs + " tx, " + b.bytes + " bytes, proposer " +
        b.proposer + (b.kind === "timeout" ? ", round reached by a timeout certificate (" + b.skipped_rounds +
        " round(s) timed out)" : "") + "\n" + b.id
    });
    node.appendChild(el("div", { "class": "h" }, "#" + b.height));
    node.appendChild(el("div", null, b.txs + " tx"));
    node.appendChild(el("div", null, (b.bytes / 1024).toFixed(1) + " KiB"));
    node.appendChild(el("div", null, "p" + b.proposer + (b.kind === "timeout" ? " TC" : "")));
    return node;
  }

  function addBlocks(list, replace) {
    if (replace) { blocks = []; }
    var newest = blocks.length ? blocks[blocks.length - 1].height : 0;
    list.forEach(function (b) { if (b.height > newest) { blocks.push(b); newest = b.height; } });
    if (blocks.length > BLOCKS_SHOWN) { blocks = blocks.slice(blocks.length - BLOCKS_SHOWN); }
    var box = $("timeline");
    box.textContent = "";
    blocks.forEach(function (b) { box.appendChild(blockNode(b)); });
    box.scrollLeft = box.scrollWidth;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) { node.textContent = String(text); }
    return node;
  }

  function niceMax(values) {
    var max = 0;
    values.forEach(function (v) { if (v !== null && v > max) { max = v; } });
    if (max <= 0) { return 1; }
    var step = Math.pow(10, Math.floor(Math.log10(max)));
    var scaled = Math.ceil(max / step);
    return (scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * step;
  }

  function path(values, max, width, height, top) {
    var d = "";
    var n = values.length;
    var pen = false;
    for (var i = 0; i < n; i++) {
      var v = values[i];
      if (v === null) { pen = false; continue; }
      var x = (i / (n - 1)) * width;
      var y = top + height - (v / max) * height;
      d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      pen = true;
    }
    return d || "M0 0";
  }

  function drawThroughput(t) {
    var chart = $("throughput");
    var W = 800, H = 200, top = 14, bottom = 18, h = H - top - bottom;
    chart.textContent = "";
    var txMax = niceMax(t.txs), latMax = niceMax(t.latency_ms);
    for (var g = 0; g <= 4; g++) {
      var y = top + (h * g) / 4;
      chart.appendChild(svg("line", { "class": "grid", x1: 0, x2: W, y1: y, y2: y }));
    }
    chart.appendChild(svg("path", { "class": "tx", d: path(t.txs, txMax, W, h, top) }));
    chart.appendChild(svg("path", { "class": "lat", d: path(t.latency_ms, latMax, W, h, top) }));
    chart.appendChild(svg("text", { x: 4, y: 11 }, txMax + " tx/s"));
    chart.appendChild(svg("text", { x: W - 4, y: 11, "text-anchor": "end" }, latMax + " ms"));
    chart.appendChild(svg("text", { x: 4, y: H - 4 }, "-" + t.seconds + " s"));
    chart.appendChild(svg("text", { x: W - 4, y: H - 4, "text-anchor": "end" }, "now"));
    setText("txrate", t.tx_s);
    setText("blockrate", t.blocks_s);
  }

  function drawRollups(rollups) {
    var body = $("rollups").tBodies[0];
    body.textContent = "";
    if (!rollups.length) {
      var row = el("tr");
      row.appendChild(el("td", { colspan: 4, "class": "empty" }, "no rollup committed since this dashboard opened"));
      body.appendChild(row);
      return;
    }
    rollups.forEach(function (r) {
      var tr = el("tr", { "data-rollup": r.id });
      tr.appendChild(el("td", null, r.id));
      tr.appendChild(el("td", null, r.tx_s));
      tr.appendChild(el("td", null, r.height));
      var tail = el("td", { "class": "tail" });
      r.tail.forEach(function (s) {
        var a = el("a", { href: s.proof, target: "_blank", rel: "noopener", "data-height": s.height,
                          title: s.txs + " tx at height " + s.height });
        a.appendChild(el("span", { "class": "verified" }, s.verified ? "✓ " : ""));
        a.appendChild(document.createTextNode(s.height + " (" + s.txs + ")"));
        tail.appendChild(a);
      });
      tr.appendChild(tail);
      body.appendChild(tr);
    });
  }

  function drawEvidence(list) {
    var box = $("evidence");
    box.textContent = "";
    if (!list.length) { box.appendChild(el("div", { "class": "empty" }, "no equivocation recorded")); return; }
    list.forEach(function (e) {
      var item = el("div", { "class": "evidence", "data-evidence": e.id, "data-offender": e.offender,
                             "data-committed": e.committed ? "true" : "false" });
      item.appendChild(el("div", null, e.kind.replace("_", " ") + " by replica " + e.offender + " in round " +
        e.round + " · committed: " + (e.committed ? "yes (height " + e.committed_height + ")" : "no")));
      item.appendChild(el("code", null, "A " + e.block_a));
      item.appendChild(el("br"));
      item.appendChild(el("code", null, "B " + e.block_b));
      item.appendChild(el("br"));
      item.appendChild(el("a", { href: e.json, target: "_blank", rel: "noopener" },
        "evidence JSON (ordo evidence verify FILE)"));
      box.appendChild(item);
    });
  }

  function drawFaults(faults) {
    var box = $("faults");
    box.textContent = "";
    var peers = Object.keys(faults.rules || {});
    if (faults.byzantine) {
      box.appendChild(el("div", { "data-fault": "byzantine" }, "this replica runs --byzantine " + faults.byzantine));
    }
    if (!peers.length) {
      if (!faults.byzantine) { box.appendChild(el("div", { "class": "empty" }, "none")); }
      return;
    }
    var table = el("table");
    var head = el("tr");
    ["peer", "drop", "delay (s)", "jitter (s)", "blocked"].forEach(function (h) { head.appendChild(el("th", null, h)); });
    table.appendChild(head);
    peers.forEach(function (p) {
      var r = faults.rules[p];
      var tr = el("tr", { "data-fault": p });
      [p, r.drop, r.delay, r.jitter, r.blocked ? "yes" : "no"].forEach(function (v) { tr.appendChild(el("td", null, v)); });
      table.appendChild(tr);
    });
    box.appendChild(table);
  }

  function drawStatus(view) {
    drawHeader(view);
    drawCommittee(view.committee);
    drawThroughput(view.throughput);
    drawRollups(view.rollups);
    drawEvidence(view.evidence);
    drawFaults(view.faults);
  }

  // -- the stream ----------------------------------------------------------------------------------

  function handle(kind, fn) {
    return function (message) {
      lastEvent = Date.now();
      setConnection("live");
      var data;
      try { data = JSON.parse(message.data); } catch (err) { return; }
      fn(data);
      document.body.setAttribute("data-last-event", kind);
    };
  }

  function connect() {
    reconnectTimer = null;
    if (source) { source.close(); }
    setConnection(lastEvent ? "lost" : "connecting");
    source = new EventSource("/v1/dashboard/events");
    source.addEventListener("snapshot", handle("snapshot", function (view) {
      drawStatus(view);
      addBlocks(view.blocks, true);
    }));
    source.addEventListener("status", handle("status", drawStatus));
    source.addEventListener("commit", handle("commit", function (c) {
      setText("height", c.height);
      setText("round", c.round);
      setText("leader", c.leader === null ? "-" : "replica " + c.leader);
      committee.forEach(function (m) {
        if (m.self) { m.round = c.round; m.height = c.height; }
        m.leader = m.id === c.leader;
      });
      drawCommittee(committee);
      addBlocks(c.blocks, false);
    }));
    source.onopen = function () { lastEvent = Date.now(); };
    source.onerror = function () {
      setConnection("lost");
      if (source && source.readyState === EventSource.CLOSED) { schedule(); }
    };
  }

  function schedule() {
    if (reconnectTimer === null) { reconnectTimer = setTimeout(connect, RECONNECT_DELAY); }
  }

  setInterval(function () {
    if (lastEvent && Date.now() - lastEvent > STALE_AFTER) {
      setConnection("lost");
      lastEvent = Date.now(); // one reconnect per STALE_AFTER
      schedule();
    }
  }, 1000);

  connect();
}());
