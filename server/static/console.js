// HoSo console: live updates, the signature pad, the address pickers. No libraries, nothing from outside.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  // ---- live updates (server-sent events) -------------------------------------------------
  function connectLive(onChange) {
    const badge = document.getElementById("live");
    const source = new EventSource("/console/live");
    source.addEventListener("ready", () => { if (badge) { badge.className = "live on"; } });
    source.addEventListener("change", (e) => onChange(JSON.parse(e.data)));
    source.onerror = () => { if (badge) { badge.className = "live off"; } };
    window.hosoLive = source;
  }

  function boardPage() {
    const table = document.getElementById("board");
    let timer = null;
    const pending = new Set();
    async function refresh() {
      timer = null;
      const changed = new Set(pending);
      pending.clear();
      const r = await fetch("/console/board/rows?" + table.dataset.query, { credentials: "same-origin" });
      if (!r.ok) { return; }
      const holder = document.createElement("table");
      holder.innerHTML = await r.text();
      const rows = holder.querySelector("tbody");
      // keep a courier picked but not yet sent
      document.getElementById("board-rows").replaceWith(rows);
      rows.querySelectorAll("tr[data-code]").forEach((tr) => {
        if (changed.has(tr.dataset.code)) { tr.classList.add("flash"); }
      });
      document.body.dataset.refreshed = String(Date.now());
    }
    connectLive((msg) => {
      msg.codes.forEach((c) => pending.add(c));
      if (!timer) { timer = setTimeout(refresh, 150); }
    });
  }

  function shipmentPage() {
    const code = document.body.dataset.code;
    const here = "/console/shipments/" + code;
    // a refused upload answers at .../pages: reloading that would send the form again
    if (window.location.pathname !== here) { window.history.replaceState(null, "", here + "#pages"); }
    let sending = false;  // an upload in flight: its own answer will show the change
    document.addEventListener("submit", () => { sending = true; });
    connectLive((msg) => {
      if (msg.codes.includes(code) && !sending) { window.location.reload(); }
    });
  }

  function handoverPage() {
    const mine = document.body.dataset.codes.split(",");
    connectLive((msg) => { if (msg.codes.some((c) => mine.includes(c))) { window.location.reload(); } });
  }

  function refreshOnChange() {
    let timer = null;
    connectLive(() => { if (!timer) { timer = setTimeout(() => window.location.reload(), 1000); } });
  }

  // ---- signature pad: strokes on a canvas, sent as a PNG data URL and the strokes JSON ----------
  function signaturePad(canvas) {
    const ctx = canvas.getContext("2d");
    const strokes = [];
    let current = null;
    const start = Date.now();
    ctx.lineWidth = 2.5; ctx.lineCap = "round"; ctx.strokeStyle = "#14207a";
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    const point = (e) => {
      const box = canvas.getBoundingClientRect();
      return [Math.round((e.clientX - box.left) * canvas.width / box.width),
        Math.round((e.clientY - box.top) * canvas.height / box.height), Date.now() - start];
    };
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      current = [point(e)]; strokes.push(current);
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!current) { return; }
      const p = point(e), q = current[current.length - 1];
      current.push(p);
      ctx.beginPath(); ctx.moveTo(q[0], q[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    });
    const end = () => { current = null; sync(); };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    const form = canvas.closest("form");
    function sync() {
      const points = strokes.reduce((n, s) => n + s.length, 0);
      form.elements.signature_png.value = points >= 5 ? canvas.toDataURL("image/png") : "";
      form.elements.signature_strokes.value = JSON.stringify({ w: canvas.width, h: canvas.height, strokes: strokes });
    }
    const clear = document.getElementById("sig-clear");
    if (clear) {
      clear.addEventListener("click", () => {
        strokes.length = 0;
        ctx.fillRect(0, 0, canvas.width, canvas.height);
        sync();
      });
    }
  }

  // ---- address pickers: province -> communes (the two-level map since July 2025) ------------
  function addressPickers() {
    const pickers = document.querySelectorAll("select[data-province]");
    if (pickers.length) {
      fetch("/console/provinces.json", { credentials: "same-origin" })
        .then((r) => r.json())
        .then((provinces) => pickers.forEach((sel) => provincePicker(sel, provinces)));
    }
    procedurePicker();
  }

  function provincePicker(sel, provinces) {
    {
      const commune = document.getElementById(sel.dataset.province);
      const fill = () => {
        const p = provinces.find((x) => x.name === sel.value);
        const keep = commune.value;
        commune.innerHTML = "";
        commune.append(new Option("—", ""));
        (p ? p.communes : []).forEach((c) => commune.append(new Option(c, c, false, c === keep)));
      };
      sel.addEventListener("change", fill);
      if (commune.options.length <= 1) { fill(); }
    }
  }

  function procedurePicker() {
    const field = document.getElementById("field");
    const procedures = document.getElementById("procedures-data");
    if (field && procedures) {
      const byField = JSON.parse(procedures.textContent);
      const list = document.getElementById("procedure-list");
      const fill = () => {
        list.innerHTML = "";
        (byField[field.value] || []).forEach((p) => list.append(new Option(p)));
      };
      field.addEventListener("change", fill);
      fill();
    }
  }

  // ---- the unit's procedure catalogue: picking one fills name, field, components and fee ------
  function cataloguePicker() {
    const pick = document.getElementById("procedure_code");
    const form = document.getElementById("register");
    if (!pick || !form) { return; }
    const dest = document.getElementById("dest_unit");
    let procedures = [];
    const load = () => {
      const unit = (dest && dest.value) || form.dataset.unit;
      const keep = pick.value || pick.dataset.selected;
      if (!unit) { return; }
      fetch("/console/shop/procedures.json?unit=" + encodeURIComponent(unit), { credentials: "same-origin" })
        .then((r) => r.json())
        .then((cat) => {
          procedures = cat.procedures || [];
          pick.length = 1;
          procedures.forEach((p) => pick.append(new Option(p.code + " · " + p.name, p.code, false, p.code === keep)));
        });
    };
    pick.addEventListener("change", () => {
      const p = procedures.find((x) => x.code === pick.value);
      if (!p) { return; }
      form.elements.procedure.value = p.name;
      const field = form.elements.field;
      if (![...field.options].some((o) => o.value === p.field)) { field.append(new Option(p.field, p.field)); }
      field.value = p.field;
      form.elements.components.value = p.components.join("\n");
      form.elements.fee_vnd.value = String(p.fee_vnd);
    });
    if (dest) { dest.addEventListener("change", load); }
    load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    cataloguePicker();
    const page = document.body.dataset.page;
    if (page === "board") { boardPage(); }
    if (page === "shipment") { shipmentPage(); }
    if (page === "couriers") { refreshOnChange(); }
    if (page === "handover") { handoverPage(); }
    document.querySelectorAll("canvas.sigpad").forEach(signaturePad);
    addressPickers();
    window.hosoCsrf = csrf;
  });
})();
