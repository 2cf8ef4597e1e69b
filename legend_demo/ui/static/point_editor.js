// The lesion-point editor (legend_demo/ui/point_editor.py) on the film viewer core.
// value (never holds film pixels or window/level): {width, height, points: [{x, y, confidence, label}],
//   found: the grounder's points, for_text: the description they were found for (null: placed by hand), rev, origin,
//   overlay: {prior, region} data URLs drawn by Python for these points (Python → browser only: stripped on the way
//   back; a value from Python with the same rev only refreshes the overlay, so a slow reply never undoes an edit)}
// props.film: {film: payload, markers, presets}.
{
  const LV = window.LegendViewer;
  const host = element.querySelector('.lv-host');
  const MAX_HISTORY = 100;
  const ui = {rev: null, history: [], index: 0, selected: -1, prior: true, region: true, drag: null};
  const norm = (s) => String(s ?? '').trim().split(/\s+/).filter(Boolean).join(' ');
  const clone = (pts) => (pts || []).map((p) => Object.assign({}, p));
  const valid = (v) => (v && typeof v === 'object' && v.width) ? v : null;
  const current = () => valid(ui.local) || valid(props.value);
  const points = () => (current() ? current().points || [] : []);
  const parse = (label) => {
    const m = String(label || '').match(/^(.*?)(?:, ([^,()]*))?(?: \(([^()]*)\))?$/);
    return m ? {finding: m[1] || '', change: m[2] || '', zone: m[3] || ''} : {finding: String(label || ''), change: '', zone: ''};
  };
  const compose = (f) => {
    const finding = norm(f.finding), change = norm(f.change), zone = norm(f.zone);
    return (finding || (change || zone ? 'finding' : '')) + (change ? ', ' + change : '') + (zone ? ' (' + zone + ')' : '');
  };
  const samePlaces = (a, b) => Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
    a.every((p, i) => p.x === b[i].x && p.y === b[i].y);
  const stale = () => {
    const v = current();
    return !!(v && points().length && v.for_text != null && norm(v.for_text) !== norm(window.__legendText));
  };

  host.innerHTML = LV.toolbarHTML() +
    '<div class="pe-body"><div class="lv-panes pe-panes"></div><div class="pe-side">' +
    '<div class="pe-stale" role="alert" hidden></div>' +
    '<div class="pe-actions"><button type="button" data-pe="undo" title="Undo (Ctrl+Z)">↶ Undo</button>' +
    '<button type="button" data-pe="redo" title="Redo (Ctrl+Shift+Z or Ctrl+Y)">↷ Redo</button>' +
    '<button type="button" data-pe="reset" title="Back to the points the grounder found (G)">Reset to found points</button>' +
    '<button type="button" data-pe="prior" aria-pressed="true" title="Show the Gaussian prior (O)">Prior overlay</button>' +
    '<button type="button" data-pe="region" aria-pressed="true" title="Show the edit region outline (E)">Edit region</button>' +
    '<button type="button" data-pe="anatomy" aria-pressed="false" title="Show the anatomy found on this film: lung fields, heart, hemidiaphragms, chest wall (A)">Anatomy</button></div>' +
    '<div class="pe-size"></div><ol class="pe-list"></ol><ul class="pe-notes" role="status" aria-label="warnings" hidden></ul>' +
    '<div class="pe-help">Click the film to add a point · drag a point to move it · double-click it or ✕ to delete · ' +
    'drag the film for window/level, wheel to zoom · keys work while the film has the focus: Ctrl+Z / Ctrl+Y, Delete, O, E, A, G, I, R, 1–3.</div>' +
    '</div></div><div class="lv-empty pe-empty">Upload a radiograph or pick a synthetic example, then press ' +
    '<b>Find lesions</b> or click the film to place points.</div>';
  const pane = new LV.Pane(host.querySelector('.pe-panes'), 'pe-pane');
  pane.setTitle('PRIOR — your film (points in its pixels)', false);
  const list = host.querySelector('.pe-list');

  // ---- value in, value out -------------------------------------------------------------------------------------
  const commit = (pts, opts) => {
    const v = current();
    if (!v) return;
    const record = !opts || opts.record !== false;
    const next = Object.assign({}, v, {points: clone(pts)}, (opts && opts.patch) || {});
    delete next.overlay;  // Python draws it again for these points
    ui.local = next;
    props.value = next;
    if (record) {
      ui.history = ui.history.slice(0, ui.index + 1);
      ui.history.push(clone(pts));
      if (ui.history.length > MAX_HISTORY) ui.history.shift();
      ui.index = ui.history.length - 1;
    }
    render();
  };
  const undo = () => { if (ui.index > 0) { ui.index -= 1; ui.selected = -1; commit(ui.history[ui.index], {record: false}); } };
  const redo = () => { if (ui.index < ui.history.length - 1) { ui.index += 1; ui.selected = -1; commit(ui.history[ui.index], {record: false}); } };
  const resetToFound = () => { const v = current(); if (v && Array.isArray(v.found)) { ui.selected = -1; commit(v.found); } };
  const remove = (i) => { ui.selected = -1; commit(points().filter((_, k) => k !== i)); };
  const edit = (i, patch) => commit(points().map((p, k) => (k === i ? Object.assign({}, p, patch) : p)));

  const fromPython = () => {
    const v = valid(props.value);
    if (!v) { ui.rev = null; ui.local = null; render(); return; }
    if (v.rev !== ui.rev) {  // a new film, a new Find, an example: a fresh history
      ui.rev = v.rev;
      ui.local = null;
      ui.history = [clone(v.points)];
      ui.index = 0;
      ui.selected = -1;
    }
    overlayIn(v.overlay);
    if (ui.local) ui.local = Object.assign({}, ui.local, {notices: v.notices});  // warnings come from Python
    const asked = ui.local && (ui.local.points || []).some((p) => p.ask);
    if (asked && samePlaces(ui.local.points, v.points)) {  // Python labelled the points placed by hand: keep its labels
      ui.local = Object.assign({}, ui.local, {points: clone(v.points)});
      ui.history[ui.index] = clone(v.points);
    }
    const mine = ui.local;
    if (mine && mine !== ui.resent && (JSON.stringify(mine.points) !== JSON.stringify(v.points) || mine.for_text !== v.for_text)) {
      // a late reply to an older edit replaced the page's copy: send the newest edit again (once), so Generate uses it
      ui.resent = mine;
      props.value = Object.assign({}, mine);
    }
    render();
  };
  const filmIn = () => {
    const f = props.film;
    if (!f || !f.film) { pane.setFilm(null); return; }
    if (pane.want !== f.film.key) LV.resetView();
    pane.setMarkers(f.markers);
    pane.setFilm(f.film).catch((e) => console.error(e));
  };
  const overlayIn = (o) => {
    o = o || {};
    pane.setOverlay('prior', o.prior || '', 0.5);
    pane.setOverlay('region', o.region || '', 0.95);
    if (o.anatomy !== undefined) pane.setOverlay('anatomy', o.anatomy || '', 0.9);  // kept until the next film
    pane.showOverlay('prior', ui.prior);
    pane.showOverlay('region', ui.region);
    pane.showOverlay('anatomy', !!ui.anatomy);
  };

  // ---- drawing -------------------------------------------------------------------------------------------------
  const placeDots = () => {
    const v = current();
    pane.layer.querySelectorAll('.pe-dot').forEach((dot) => {
      const i = Number(dot.dataset.i);
      const p = ui.drag && ui.drag.i === i && ui.drag.pos ? ui.drag.pos : points()[i];
      const at = v && p ? pane.toStage(p.x / v.width, p.y / v.height) : null;
      const r = pane.rect();
      dot.hidden = !at || at.x < 0 || at.y < 0 || at.x > r.width || at.y > r.height;
      if (at) { dot.style.left = at.x + 'px'; dot.style.top = at.y + 'px'; }
    });
  };
  pane.onDraw = placeDots;

  const render = () => {
    const v = current();
    host.querySelector('.pe-empty').hidden = !!v;
    host.querySelector('.pe-body').hidden = !v;
    host.querySelector('.lv-toolbar').hidden = !v;
    if (!v) return;
    const focused = host.contains(document.activeElement) && document.activeElement !== host;
    const pts = points();
    pane.layer.innerHTML = pts.map((p, i) => {
      const f = parse(p.label);
      const tip = `point ${i + 1}: ${f.finding || 'placed by hand'}${f.change ? ' · ' + f.change : ''}${f.zone ? ' · ' + f.zone : ''} · confidence ${p.confidence}`;
      return `<div class="pe-dot lv-nav-ignore conf${LV.esc(p.confidence)}${i === ui.selected ? ' pe-selected' : ''}" data-i="${i}" title="${LV.esc(tip)}" aria-label="${LV.esc(tip)}"><span>${i + 1}</span></div>`;
    }).join('');
    list.innerHTML = pts.map((p, i) => {
      const f = parse(p.label);
      const opts = [1, 2, 3, 4, 5].map((c) => `<option value="${c}"${c === p.confidence ? ' selected' : ''}>${c}</option>`).join('');
      return `<li class="pe-row${i === ui.selected ? ' pe-selected' : ''}" data-i="${i}">` +
        `<div class="pe-line"><span class="pe-num conf${LV.esc(p.confidence)}">${i + 1}</span>` +
        `<input class="pe-f" data-field="finding" value="${LV.esc(f.finding)}" placeholder="${p.ask ? 'reading the description…' : 'which finding? type it'}" aria-label="finding of point ${i + 1}">` +
        `<select class="pe-conf" aria-label="confidence of point ${i + 1} (1–5)" title="confidence 1–5">${opts}</select>` +
        `<button type="button" class="pe-del" data-i="${i}" aria-label="delete point ${i + 1}" title="delete point ${i + 1}">✕</button></div>` +
        `<div class="pe-line pe-sub"><input class="pe-f" data-field="change" value="${LV.esc(f.change)}" placeholder="change" aria-label="change of point ${i + 1}">` +
        `<input class="pe-f" data-field="zone" value="${LV.esc(f.zone)}" placeholder="zone" aria-label="zone of point ${i + 1}"></div></li>`;
    }).join('');
    const found = Array.isArray(v.found) ? v.found.length : 0;
    host.querySelector('.pe-size').textContent = `${v.width} × ${v.height} px · ${pts.length} point${pts.length === 1 ? '' : 's'}` +
      (v.for_text != null ? ` · found for “${norm(v.for_text).slice(0, 60)}”` : (pts.length ? ' · placed by hand' : ''));
    host.querySelector('[data-pe="undo"]').disabled = ui.index <= 0;
    host.querySelector('[data-pe="redo"]').disabled = ui.index >= ui.history.length - 1;
    host.querySelector('[data-pe="reset"]').disabled = !found;
    host.querySelector('[data-pe="prior"]').setAttribute('aria-pressed', String(ui.prior));
    host.querySelector('[data-pe="region"]').setAttribute('aria-pressed', String(ui.region));
    const notes = Array.isArray(v.notices) ? v.notices : [];  // warnings in clinician words, from Python
    const box = host.querySelector('.pe-notes');
    box.hidden = !notes.length;
    box.innerHTML = notes.map((n) => `<li>${LV.esc(n)}</li>`).join('');
    host.querySelector('[data-pe="anatomy"]').setAttribute('aria-pressed', String(!!ui.anatomy));
    const banner = host.querySelector('.pe-stale');
    const isStale = stale();
    banner.hidden = !isStale;
    host.dataset.stale = String(isStale);
    if (isStale) {
      banner.innerHTML = `<b>These points were found for an earlier description</b> (“${LV.esc(norm(v.for_text).slice(0, 80))}”). ` +
        'Press <b>Find lesions</b> for the new text, or <button type="button" data-pe="keep">keep these points for the new text</button>. ' +
        'Generate is refused until then.';
    }
    placeDots();
    if (focused && !host.contains(document.activeElement)) host.focus({preventScroll: true});  // keys keep working
  };

  // ---- mouse ------------------------------------------------------------------------------------------------
  const toPoint = (ev) => {
    const v = current();
    const at = pane.toFilm(ev.clientX, ev.clientY);
    if (!v || !at) return null;
    const fx = LV.clamp(at.fx, 0, 0.9999), fy = LV.clamp(at.fy, 0, 0.9999);
    return {x: Math.floor(fx * v.width * 10) / 10, y: Math.floor(fy * v.height * 10) / 10};  // down: x < W stays inside
  };
  LV.bindNavigation(pane, {
    focus: host,
    onClick: (_, ev) => {
      const at = pane.toFilm(ev.clientX, ev.clientY);
      if (!current() || !at || at.fx < 0 || at.fy < 0 || at.fx >= 1 || at.fy >= 1) return;  // outside the film: nothing
      const p = toPoint(ev);
      ui.selected = points().length;
      // Python takes its finding from the description (the nearest mention no other point shows) or asks for it
      commit([...points(), {x: p.x, y: p.y, confidence: 3, label: '', ask: true}]);
    },
  });
  pane.layer.addEventListener('pointerdown', (ev) => {
    const dot = ev.target.closest('.pe-dot');
    if (!dot) return;
    ev.preventDefault();
    ev.stopPropagation();
    host.focus({preventScroll: true});
    ui.drag = {i: Number(dot.dataset.i), pos: null, id: ev.pointerId, dot};
    if (dot.setPointerCapture) dot.setPointerCapture(ev.pointerId);
  });
  pane.layer.addEventListener('pointermove', (ev) => {
    if (!ui.drag || ev.pointerId !== ui.drag.id) return;
    ui.drag.pos = toPoint(ev);
    placeDots();
  });
  const endDrag = (ev) => {
    if (!ui.drag || ev.pointerId !== ui.drag.id) return;
    const d = ui.drag;
    ui.drag = null;
    if (d.pos) edit(d.i, {x: d.pos.x, y: d.pos.y}); else select(d.i);
  };
  const select = (i) => {  // mark the selection without redrawing the dots (a double-click needs the same element)
    ui.selected = i;
    host.querySelectorAll('.pe-dot, .pe-row').forEach((el) => el.classList.toggle('pe-selected', Number(el.dataset.i) === i));
  };
  pane.layer.addEventListener('pointerup', endDrag);
  pane.layer.addEventListener('pointercancel', endDrag);
  pane.layer.addEventListener('dblclick', (ev) => {
    const dot = ev.target.closest('.pe-dot');
    if (dot) { ev.preventDefault(); remove(Number(dot.dataset.i)); }
  });

  // ---- side panel and toolbar -------------------------------------------------------------------------------
  host.addEventListener('click', (ev) => {
    const b = ev.target.closest('button');
    if (b && b.classList.contains('pe-del')) { remove(Number(b.dataset.i)); return; }
    const act = b && b.dataset.pe;
    if (act === 'undo') undo();
    else if (act === 'redo') redo();
    else if (act === 'reset') resetToFound();
    else if (act === 'prior') { ui.prior = !ui.prior; pane.showOverlay('prior', ui.prior); render(); }
    else if (act === 'region') { ui.region = !ui.region; pane.showOverlay('region', ui.region); render(); }
    else if (act === 'anatomy') { ui.anatomy = !ui.anatomy; pane.showOverlay('anatomy', ui.anatomy); render(); }
    else if (act === 'keep') commit(points(), {record: false, patch: {for_text: norm(window.__legendText)}});
    else if (!b) {
      const row = ev.target.closest('.pe-row');
      if (row && !ev.target.closest('input, select')) select(Number(row.dataset.i));
    }
  });
  list.addEventListener('change', (ev) => {
    const row = ev.target.closest('.pe-row');
    if (!row) return;
    const i = Number(row.dataset.i);
    if (ev.target.classList.contains('pe-conf')) { edit(i, {confidence: Number(ev.target.value)}); return; }
    if (ev.target.classList.contains('pe-f')) {
      const fields = parse(points()[i].label);
      fields[ev.target.dataset.field] = ev.target.value;
      edit(i, {label: compose(fields)});
    }
  });
  list.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && ev.target.classList.contains('pe-f')) ev.target.blur(); });
  LV.bindToolbar(host.querySelector('.lv-toolbar'), () => (props.film ? props.film.presets : null));

  // ---- keyboard: only while the editor has the focus, never while typing in a box ------------------------------
  host.addEventListener('keydown', (ev) => {
    if (LV.typing(ev) || !current()) return;
    const key = ev.key.toLowerCase();
    const mod = ev.ctrlKey || ev.metaKey;
    let done = true;
    if (mod && key === 'z' && !ev.shiftKey) undo();
    else if (mod && ((key === 'z' && ev.shiftKey) || key === 'y')) redo();
    else if (mod) done = false;
    else if ((ev.key === 'Delete' || ev.key === 'Backspace') && ui.selected >= 0) remove(ui.selected);
    else if (ev.key === 'Escape') { ui.selected = -1; render(); }
    else if (key === 'o') { ui.prior = !ui.prior; pane.showOverlay('prior', ui.prior); render(); }
    else if (key === 'e') { ui.region = !ui.region; pane.showOverlay('region', ui.region); render(); }
    else if (key === 'a') { ui.anatomy = !ui.anatomy; pane.showOverlay('anatomy', ui.anatomy); render(); }
    else if (key === 'g') resetToFound();
    else done = LV.viewKeys(ev, props.film ? props.film.presets : null);
    if (done) ev.preventDefault();
  });

  LV.subscribe(() => pane.draw());
  window.addEventListener('legend:text', () => render());
  watch('value', fromPython);
  watch('film', filmIn);
  filmIn();
  fromPython();
}
