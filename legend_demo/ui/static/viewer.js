// LeGend film viewer core (legend_demo/ui/viewer.py). Runs in gradio's gr.HTML js_on_load scope; defines
// window.LegendViewer once per page: film decoding, the page-wide view (window/level, invert, zoom, pan: every
// film on the page shows the same), Pane (one film on a canvas with overlays and L/R markers), the toolbar and
// the mouse/keyboard navigation. Window/level only changes the pixels drawn on the canvas; nothing here is ever
// sent to Python.
if (!window.LegendViewer) {
  const LV = {};
  window.LegendViewer = LV;
  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
  LV.clamp = clamp;
  LV.esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

  // ---- films: 12-bit samples, decoded once per content key -----------------------------------------------------
  const films = new Map();
  LV.decode = (p) => {
    if (!p || !p.key) return Promise.resolve(null);
    if (films.has(p.key)) {  // most recently used last: a prior in use is never the one dropped
      const hit = films.get(p.key);
      films.delete(p.key);
      films.set(p.key, hit);
      return hit;
    }
    if (!p.data && !p.png) return Promise.reject(new Error('film ' + p.key + ' is not loaded'));
    const base = p.base ? films.get(p.base) : null;
    if (p.base && !base) return Promise.reject(new Error('the base film of ' + p.key + ' is not loaded'));
    const job = p.png ? decodePng(p) : (async () => {
      const text = atob(p.data);
      const bytes = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
      const residual = new Uint16Array(await new Response(stream).arrayBuffer());  // little-endian residuals
      const [bx, by, bw, bh] = p.box || [0, 0, p.w, p.h];  // a film sent against a base: only where it differs
      if (residual.length !== bw * bh) throw new Error('film ' + p.key + ' has the wrong size');
      let data = residual;
      if (base) {
        data = (await base).data.slice();  // a copy of the base film
        for (let y = 0; y < bh; y++) {
          const row = (by + y) * p.w + bx, from = y * bw;
          for (let x = 0; x < bw; x++) data[row + x] = (data[row + x] + residual[from + x]) & 0xffff;
        }
      } else {
        for (let y = 0; y < p.h; y++) {
          const row = y * p.w;
          for (let x = 1; x < p.w; x++) data[row + x] = (data[row + x] + data[row + x - 1]) & 0xffff;
        }
      }
      return {key: p.key, w: p.w, h: p.h, max: (1 << p.bits) - 1, data};
    })();
    films.set(p.key, job);
    while (films.size > 16) films.delete(films.keys().next().value);
    return job;
  };

  // An 8-bit grey PNG (a page that already has metadata-free PNGs, e.g. a reader study): {key, png: data URL}.
  const decodePng = async (p) => {
    const img = new Image();
    img.src = p.png;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d', {willReadFrequently: true});
    ctx.drawImage(img, 0, 0);
    const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const data = new Uint16Array(canvas.width * canvas.height);
    for (let i = 0; i < data.length; i++) data[i] = rgba[4 * i];
    // fixed_rows: a label band at the bottom that window/level and invert leave as it is (always legible)
    const fixed = Math.max(0, Math.min(canvas.height, Number(p.fixed_rows) || 0));
    return {key: p.key, w: canvas.width, h: canvas.height, max: 255, data, fixed};
  };

  // ---- the page-wide view ----------------------------------------------------------------------------------
  const FRESH = {c: 0.5, w: 1, inv: false, zoom: 1, cx: 0.5, cy: 0.5, preset: 'default'};
  LV.view = Object.assign({}, FRESH);
  LV.drag = 'wl';  // what a left drag does on a film: 'wl' (window/level) or 'pan'
  const subscribers = new Set();
  LV.subscribe = (fn) => { subscribers.add(fn); return () => subscribers.delete(fn); };
  LV.setView = (patch) => {
    Object.assign(LV.view, patch);
    subscribers.forEach((fn) => { try { fn(LV.view); } catch (e) { console.error(e); } });
  };
  LV.resetView = () => LV.setView(Object.assign({}, FRESH));
  LV.zoomBy = (factor) => LV.setView({zoom: clamp(LV.view.zoom * factor, 0.5, 16)});

  // ---- one film on a canvas --------------------------------------------------------------------------------
  LV.Pane = class Pane {
    constructor(parent, extraClass) {
      this.el = document.createElement('div');
      this.el.className = 'lv-pane' + (extraClass ? ' ' + extraClass : '');
      this.el.innerHTML = '<div class="lv-title"></div><div class="lv-stage"><canvas class="lv-canvas"></canvas>' +
        '<div class="lv-mark lv-mark-left"></div><div class="lv-mark lv-mark-right"></div>' +
        '<div class="lv-mark lv-mark-top"></div><div class="lv-mark lv-mark-bottom"></div>' +
        '<div class="lv-layer"></div><div class="lv-readout"></div></div>' +
        '<img class="lv-band" alt="" draggable="false" hidden>';
      parent.appendChild(this.el);
      this.stage = this.el.querySelector('.lv-stage');
      this.canvas = this.el.querySelector('.lv-canvas');
      this.layer = this.el.querySelector('.lv-layer');
      this.film = null;
      this.renders = new Map();  // film key -> {canvas, lutKey}
      this.overlays = {};  // name -> {img, alpha, visible}
      this.onDraw = null;
      new ResizeObserver(() => this.draw()).observe(this.stage);
    }
    setTitle(html, synthetic) {
      this.el.querySelector('.lv-title').innerHTML = html;
      this.el.classList.toggle('lv-synthetic', !!synthetic);
    }
    setBand(url, alt) {
      const band = this.el.querySelector('.lv-band');
      band.hidden = !url;
      if (url) { band.src = url; band.alt = alt || ''; }
    }
    setMarkers(m) {
      for (const edge of ['left', 'right', 'top', 'bottom']) {
        const mark = this.el.querySelector('.lv-mark-' + edge);
        mark.textContent = (m && m[edge]) || '';
        mark.title = (m && m.note) || '';
        mark.classList.toggle('lv-assumed', !!(m && m.assumed));
      }
    }
    async setFilm(payload) {
      const key = payload ? payload.key : null;
      this.want = key;
      if (!key) { this.film = null; this.draw(); return; }
      const film = await LV.decode(payload);
      if (this.want !== key) return;
      this.film = film;
      this.draw();
      this.el.dataset.drawn = key;  // on screen now (benchmarks/bench_ui.py times click → this)
    }
    setOverlay(name, url, alpha) {
      if (!url) { delete this.overlays[name]; this.draw(); return; }
      const old = this.overlays[name];
      if (old && old.url === url) return;
      const img = new Image();
      const entry = {url, img, alpha, visible: old ? old.visible : true, ready: false};
      this.overlays[name] = entry;
      img.onload = () => { entry.ready = true; this.draw(); };
      img.src = url;
    }
    showOverlay(name, visible) {
      if (this.overlays[name]) { this.overlays[name].visible = visible; this.draw(); }
    }
    rect() { return this.stage.getBoundingClientRect(); }
    transform() {  // film pixel (x, y) -> stage css px (tx + s·x, ty + s·y)
      const r = this.rect();
      if (!this.film || !r.width || !r.height) return null;
      const fit = Math.min(r.width / this.film.w, r.height / this.film.h);
      const s = fit * LV.view.zoom;
      return {s, tx: r.width / 2 - LV.view.cx * this.film.w * s, ty: r.height / 2 - LV.view.cy * this.film.h * s, r};
    }
    toFilm(clientX, clientY) {  // -> fractions of the film (0..1), unclamped
      const t = this.transform();
      if (!t) return null;
      return {fx: (clientX - t.r.left - t.tx) / (t.s * this.film.w), fy: (clientY - t.r.top - t.ty) / (t.s * this.film.h)};
    }
    toStage(fx, fy) {
      const t = this.transform();
      if (!t) return null;
      return {x: t.tx + fx * this.film.w * t.s, y: t.ty + fy * this.film.h * t.s};
    }
    rendered() {  // the film through the current window/level and invert, at film resolution
      const v = LV.view;
      const lutKey = v.c.toFixed(5) + '/' + v.w.toFixed(5) + '/' + v.inv;
      let entry = this.renders.get(this.film.key);
      if (!entry) {
        const canvas = document.createElement('canvas');
        canvas.width = this.film.w;
        canvas.height = this.film.h;
        entry = {canvas, lutKey: ''};
        this.renders.set(this.film.key, entry);
        while (this.renders.size > 4) this.renders.delete(this.renders.keys().next().value);
      }
      if (entry.lutKey !== lutKey) {
        const max = this.film.max;
        const lut = new Uint8ClampedArray(max + 1);
        const lo = v.c - v.w / 2;
        for (let k = 0; k <= max; k++) {
          const t = clamp((k / max - lo) / v.w, 0, 1);
          lut[k] = Math.round(255 * (v.inv ? 1 - t : t));
        }
        const ctx = entry.canvas.getContext('2d');
        const image = ctx.createImageData(this.film.w, this.film.h);
        const out = new Uint32Array(image.data.buffer);
        const data = this.film.data;
        const windowed = (this.film.h - (this.film.fixed || 0)) * this.film.w;  // rows below: drawn as stored
        for (let i = 0; i < data.length; i++) {
          const g = i < windowed ? lut[data[i]] : Math.round(255 * data[i] / max);
          out[i] = 0xff000000 | (g << 16) | (g << 8) | g;  // RGBA bytes, little-endian
        }
        ctx.putImageData(image, 0, 0);
        entry.lutKey = lutKey;
      }
      return entry.canvas;
    }
    draw() {
      const r = this.rect();
      const dpr = window.devicePixelRatio || 1;
      const width = Math.max(1, Math.round(r.width * dpr));
      const height = Math.max(1, Math.round(r.height * dpr));
      if (this.canvas.width !== width || this.canvas.height !== height) {
        this.canvas.width = width;
        this.canvas.height = height;
      }
      const ctx = this.canvas.getContext('2d');
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, width, height);
      const t = this.transform();
      if (t) {
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.imageSmoothingEnabled = t.s < 2;
        ctx.imageSmoothingQuality = 'high';
        const w = this.film.w * t.s;
        const h = this.film.h * t.s;
        ctx.drawImage(this.rendered(), t.tx, t.ty, w, h);
        for (const o of Object.values(this.overlays)) {
          if (!o.ready || !o.visible) continue;
          ctx.globalAlpha = o.alpha;
          ctx.imageSmoothingEnabled = true;
          ctx.drawImage(o.img, t.tx, t.ty, w, h);
          ctx.globalAlpha = 1;
        }
      }
      const v = LV.view;
      this.el.querySelector('.lv-readout').textContent = this.film
        ? `W ${Math.round(100 * v.w)}% · L ${Math.round(100 * v.c)}%${v.inv ? ' · inverted' : ''} · ${v.zoom.toFixed(1)}×`
        : '';
      if (this.onDraw) this.onDraw(t);
    }
  };

  // ---- toolbar -----------------------------------------------------------------------------------------------
  LV.toolbarHTML = (extra) =>
    '<div class="lv-toolbar" role="toolbar">' +
    '<span class="lv-group" title="Window presets (keys 1, 2, 3)">' +
    '<button type="button" data-preset="default" title="Default window: the film as loaded (1)">Default</button>' +
    '<button type="button" data-preset="lung" title="Lung window (2)">Lung</button>' +
    '<button type="button" data-preset="mediastinum" title="Mediastinum window (3)">Mediastinum</button></span>' +
    '<span class="lv-group"><button type="button" data-act="invert" title="Invert (I)">Invert</button>' +
    '<button type="button" data-act="zoom-out" title="Zoom out (−)" aria-label="zoom out">−</button>' +
    '<button type="button" data-act="zoom-in" title="Zoom in (+)" aria-label="zoom in">+</button>' +
    '<button type="button" data-act="reset" title="Reset window, zoom and pan (R)">Reset</button></span>' +
    '<span class="lv-group lv-drag" title="What dragging on a film does; the wheel zooms, a middle or Shift drag pans">' +
    'Drag <button type="button" data-drag="wl" aria-pressed="true" title="Drag: window (left-right) and level (up-down)">W/L</button>' +
    '<button type="button" data-drag="pan" aria-pressed="false" title="Drag: pan">Pan</button></span>' + (extra || '') + '</div>';

  LV.bindToolbar = (root, presets) => {
    const sync = () => {
      root.querySelectorAll('[data-preset]').forEach((b) => b.setAttribute('aria-pressed', String(LV.view.preset === b.dataset.preset)));
      root.querySelectorAll('[data-act="invert"]').forEach((b) => b.setAttribute('aria-pressed', String(LV.view.inv)));
      root.querySelectorAll('[data-drag]').forEach((b) => b.setAttribute('aria-pressed', String(LV.drag === b.dataset.drag)));
    };
    root.addEventListener('click', (ev) => {
      const b = ev.target.closest('button');
      if (!b || !root.contains(b)) return;
      if (b.dataset.preset) LV.applyPreset(presets(), b.dataset.preset);
      else if (b.dataset.act === 'invert') LV.setView({inv: !LV.view.inv});
      else if (b.dataset.act === 'zoom-in') LV.zoomBy(1.25);
      else if (b.dataset.act === 'zoom-out') LV.zoomBy(0.8);
      else if (b.dataset.act === 'reset') LV.resetView();
      else if (b.dataset.drag) { LV.drag = b.dataset.drag; LV.setView({}); }
    });
    LV.subscribe(sync);
    sync();
  };

  LV.applyPreset = (presets, name) => {
    const p = presets && presets[name];
    if (!p) return;
    LV.setView({c: p[0], w: p[1], preset: name});
  };

  // ---- keys every viewer understands (only while that viewer has the focus: never in a text box) -------------
  LV.typing = (ev) => !!ev.target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]');
  LV.viewKeys = (ev, presets) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return false;
    const k = ev.key;
    if (k === 'i' || k === 'I') LV.setView({inv: !LV.view.inv});
    else if (k === 'r' || k === 'R') LV.resetView();
    else if (k === '1') LV.applyPreset(presets, 'default');
    else if (k === '2') LV.applyPreset(presets, 'lung');
    else if (k === '3') LV.applyPreset(presets, 'mediastinum');
    else if (k === '+' || k === '=') LV.zoomBy(1.25);
    else if (k === '-' || k === '_') LV.zoomBy(0.8);
    else if (k.startsWith('Arrow')) {
      const step = 0.05 / LV.view.zoom;
      const d = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]}[k];
      LV.setView({cx: LV.view.cx + d[0], cy: LV.view.cy + d[1]});
    } else return false;
    return true;
  };

  // ---- mouse on a film: drag = window/level (or pan), middle/Shift drag = pan, right drag = zoom, wheel = zoom ---
  // opts.onClick(pane, ev): a press and release without movement (the editor adds a point); opts.focus: element to
  // focus so the keyboard shortcuts reach this viewer and never the page's text boxes.
  LV.bindNavigation = (pane, opts) => {
    const stage = pane.stage;
    let drag = null;
    stage.addEventListener('contextmenu', (ev) => ev.preventDefault());  // no "Save image as": downloads are labelled files
    stage.addEventListener('pointerdown', (ev) => {
      if (ev.target.closest('.lv-nav-ignore')) return;
      if (opts && opts.focus) opts.focus.focus({preventScroll: true});
      const mode = ev.button === 2 ? 'zoom' : (ev.button === 1 || ev.shiftKey || LV.drag === 'pan') ? 'pan' : 'wl';
      drag = {mode, x: ev.clientX, y: ev.clientY, moved: false, start: Object.assign({}, LV.view), id: ev.pointerId};
      if (stage.setPointerCapture) stage.setPointerCapture(ev.pointerId);
      ev.preventDefault();
    });
    stage.addEventListener('pointermove', (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const dx = ev.clientX - drag.x;
      const dy = ev.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      drag.moved = true;
      const r = pane.rect();
      const t = pane.transform();
      if (drag.mode === 'wl') {
        LV.setView({w: clamp(drag.start.w + dx / r.width, 0.005, 2), c: clamp(drag.start.c + dy / r.height, -0.5, 1.5), preset: ''});
      } else if (drag.mode === 'pan' && t) {
        LV.setView({cx: drag.start.cx - dx / (t.s * pane.film.w), cy: drag.start.cy - dy / (t.s * pane.film.h)});
      } else if (drag.mode === 'zoom') {
        LV.setView({zoom: clamp(drag.start.zoom * Math.exp(-dy / 150), 0.5, 16)});
      }
    });
    const end = (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const d = drag;
      drag = null;
      if (!d.moved && d.mode === 'wl' && ev.type === 'pointerup' && opts && opts.onClick) opts.onClick(pane, ev);
    };
    stage.addEventListener('pointerup', end);
    stage.addEventListener('pointercancel', end);
    stage.addEventListener('wheel', (ev) => {
      const t = pane.transform();
      if (!t) return;
      ev.preventDefault();
      const zoom = clamp(LV.view.zoom * Math.exp(-ev.deltaY * 0.0015), 0.5, 16);
      const at = pane.toFilm(ev.clientX, ev.clientY);
      const px = ev.clientX - t.r.left;
      const py = ev.clientY - t.r.top;
      const s = t.s * zoom / LV.view.zoom;
      LV.setView({zoom, cx: at.fx - (px - t.r.width / 2) / (s * pane.film.w), cy: at.fy - (py - t.r.height / 2) / (s * pane.film.h)});
    }, {passive: false});
  };
}
