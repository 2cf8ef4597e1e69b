// The results viewer (legend_demo/ui/viewer.py FilmViewer): two films of the result side by side, or one pane
// flickering between them in place; the pair is chosen from value.pairs (prior ↔ follow-up, GBCA on ↔ off ...).
// Value: {films: [{id, title, film, band, synthetic}], pairs: [[idA, idB, caption]], markers, presets, region, note,
// fresh_view (optional: reset window/zoom whenever the films change)}.
{
  const LV = window.LegendViewer;
  const host = element.querySelector('.lv-host');
  const ui = {layout: 'side', showing: 0, pair: 0, auto: null, region: true};
  host.innerHTML = LV.toolbarHTML() +
    '<div class="lv-controls"><label>Compare <select class="fv-pair" aria-label="films to compare"></select></label>' +
    '<span class="lv-group"><button type="button" data-layout="side" aria-pressed="true" title="Side by side (S)">Side by side</button>' +
    '<button type="button" data-layout="flicker" aria-pressed="false" title="One pane, toggled in place (S)">Flicker</button></span>' +
    '<button type="button" class="fv-flip" title="Show the other film in place (F)">⇄ Other film</button>' +
    '<button type="button" class="fv-auto" aria-pressed="false" title="Flicker automatically, twice a second (A)">Auto</button>' +
    '<button type="button" class="fv-region" aria-pressed="true" title="Show the edit region outline (E)">Edit region</button></div>' +
    '<div class="lv-panes"></div><div class="lv-note"></div>' +
    '<div class="lv-empty fv-empty">The SYNTHETIC follow-up appears here beside the prior after <b>Generate</b>.</div>';
  const panesEl = host.querySelector('.lv-panes');
  const panes = [new LV.Pane(panesEl, 'fv-a'), new LV.Pane(panesEl, 'fv-b')];
  const value = () => (props.value && Array.isArray(props.value.films) && props.value.films.length) ? props.value : null;
  const byId = (id) => (value() ? value().films.find((f) => f.id === id) : null);
  const pair = () => { const v = value(); return v ? v.pairs[Math.min(ui.pair, v.pairs.length - 1)] : null; };

  const show = (pane, film) => {
    pane.el.dataset.film = film ? film.id : '';
    if (!film) return;
    pane.setTitle(LV.esc(film.title), film.synthetic);
    pane.setBand(film.band, film.synthetic ? 'SYNTHETIC label' : 'prior label');
    pane.setFilm(film.film).catch((e) => console.error(e));
  };

  const layout = () => {
    const v = value();
    host.classList.toggle('fv-has', !!v);
    host.querySelector('.fv-empty').hidden = !!v;
    host.querySelector('.lv-controls').hidden = !v;
    host.querySelector('.lv-toolbar').hidden = !v;
    host.querySelector('.lv-note').hidden = !v;  // no result, no note about it
    panesEl.hidden = !v;
    host.dataset.layout = ui.layout;
    host.querySelectorAll('[data-layout]').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.layout === ui.layout)));
    host.querySelector('.fv-flip').disabled = ui.layout !== 'flicker';
    host.querySelector('.fv-auto').disabled = ui.layout !== 'flicker';
    host.querySelector('.fv-auto').setAttribute('aria-pressed', String(!!ui.auto));
    host.querySelector('.fv-region').setAttribute('aria-pressed', String(ui.region));
    host.querySelector('.fv-region').disabled = !(v && v.region);
    if (!v) return;
    const p = pair();
    if (ui.layout === 'side') {
      panes[1].el.hidden = false;
      show(panes[0], byId(p[0]));
      show(panes[1], byId(p[1]));
    } else {
      panes[1].el.hidden = true;
      show(panes[0], byId(p[ui.showing]));
    }
    host.dataset.showing = panes[0].el.dataset.film;
  };

  const load = () => {
    const v = value();
    stopAuto();
    if (v) {
      // fresh_view (a reader study): every new set of films opens in the default window, zoom and pan
      const keys = v.films.map((f) => f.film && f.film.key).join('|');
      if (v.fresh_view && keys !== ui.keys) LV.resetView();
      ui.keys = keys;
      const select = host.querySelector('.fv-pair');
      select.innerHTML = v.pairs.map((p, i) => `<option value="${i}">${LV.esc(p[2])}</option>`).join('');
      ui.pair = 0;
      ui.showing = 0;
      select.value = '0';
      // decode every film once, bases first (the order Python sends them in)
      v.films.forEach((f) => LV.decode(f.film).catch((e) => console.error(e)));
      for (const pane of panes) {
        pane.setMarkers(v.markers);
        pane.setOverlay('region', v.region || '', 0.9);
        pane.showOverlay('region', ui.region);
      }
      host.querySelector('.lv-note').textContent = v.note || '';
    } else {
      host.querySelector('.lv-note').textContent = '';
    }
    layout();
  };

  const flip = () => { if (ui.layout === 'flicker' && value()) { ui.showing = 1 - ui.showing; layout(); } };
  const stopAuto = () => { if (ui.auto) { clearInterval(ui.auto); ui.auto = null; } };
  const toggleAuto = () => {
    if (ui.auto) stopAuto(); else if (ui.layout === 'flicker') ui.auto = setInterval(flip, 500);
    layout();
  };
  const setLayout = (name) => { ui.layout = name; ui.showing = 0; if (name !== 'flicker') stopAuto(); layout(); };
  const toggleRegion = () => { ui.region = !ui.region; panes.forEach((p) => p.showOverlay('region', ui.region)); layout(); };

  LV.bindToolbar(host, () => (value() ? value().presets : null));
  host.querySelector('.lv-controls').addEventListener('click', (ev) => {
    const b = ev.target.closest('button');
    if (!b) return;
    if (b.dataset.layout) setLayout(b.dataset.layout);
    else if (b.classList.contains('fv-flip')) flip();
    else if (b.classList.contains('fv-auto')) toggleAuto();
    else if (b.classList.contains('fv-region')) toggleRegion();
  });
  host.querySelector('.fv-pair').addEventListener('change', (ev) => { ui.pair = Number(ev.target.value); ui.showing = 0; layout(); });
  host.addEventListener('keydown', (ev) => {
    if (LV.typing(ev)) return;
    let done = true;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) done = false;
    else if (ev.key === 'f' || ev.key === 'F') { if (ui.layout !== 'flicker') setLayout('flicker'); else flip(); }
    else if (ev.key === 's' || ev.key === 'S') setLayout(ui.layout === 'side' ? 'flicker' : 'side');
    else if (ev.key === 'a' || ev.key === 'A') toggleAuto();
    else if (ev.key === 'e' || ev.key === 'E') toggleRegion();
    else done = LV.viewKeys(ev, value() ? value().presets : null);
    if (done) ev.preventDefault();
  });
  for (const pane of panes) LV.bindNavigation(pane, {focus: host});
  LV.subscribe(() => panes.forEach((p) => { if (!p.el.hidden) p.draw(); }));
  watch('value', load);
  load();
}
