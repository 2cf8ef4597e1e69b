// The reader-study page's helper (legend_demo/ui/study_app.py StudyHelper): runs in gradio's gr.HTML js_on_load
// scope, where `server.study_report` calls Python on the server with the page's session cookie.
//  * time per case (legend_demo/study/timing.py): counts a second only while a case is shown, the tab is visible
//    and focused, and the reader gave input within the idle limit; reports every few seconds and before a
//    submit; a count not yet confirmed survives a reload in sessionStorage and is resent under its report id.
//  * drafts: every answer picked is sent to the server at once (the comment after a pause), so a reload, a closed
//    tab or a new login brings the answers back; the line under Submit says so.
//  * after a submit the next case is scrolled into view with a confirmation; missing answers are scrolled to.
//  * a page restored by Back after logging out, or any request refused for want of a session, goes to the login.
// Value from Python: {position, key, event, number, total, saved_number, idle_s, report_s, draft, nonce}.
{
  const host = element.querySelector('.study-helper');
  if (!window.LegendStudy) {
    // page margins: outside the container Gradio scopes the page's CSS to, so set here (the study page only)
    const style = document.createElement('style');
    style.id = 'study-page-style';
    style.textContent = '.gradio-container > .main.fillable { padding-top: 4px; }' +
      '@media (max-width: 760px) { .gradio-container > .main.fillable { padding-left: 6px; padding-right: 6px; } }';
    document.head.appendChild(style);
    const S = {server: null, position: 0, key: '', ms: 0, queue: [], idleMs: 120000, reportMs: 15000,
               lastTick: Date.now(), lastInput: Date.now(), lastReport: Date.now(), sending: null, draftTimer: null,
               host: null, started: false};
    window.LegendStudy = S;
    const STORE = 'legend-study-clock';
    // what is counted but not yet confirmed by the server survives a reload: {key, position, ms, queue}
    const store = () => {
      try {
        sessionStorage.setItem(STORE, JSON.stringify({key: S.key, position: S.position, ms: S.ms, queue: S.queue}));
      } catch (e) { /* storage unavailable: time since the last report is lost on a reload */ }
    };
    const newId = () => Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
    const active = () => S.position > 0 && document.visibilityState === 'visible' && document.hasFocus() &&
      Date.now() - S.lastInput < S.idleMs;
    setInterval(() => {
      const now = Date.now();
      const dt = Math.min(now - S.lastTick, 2000);  // a sleeping laptop does not count
      S.lastTick = now;
      if (active()) { S.ms += dt; store(); }
      if ((S.ms >= 1000 || S.queue.length) && now - S.lastReport >= S.reportMs) S.flush();
    }, 1000);
    for (const type of ['pointermove', 'pointerdown', 'keydown', 'wheel', 'touchstart', 'scroll', 'input']) {
      window.addEventListener(type, () => { S.lastInput = Date.now(); }, {passive: true, capture: true});
    }
    S.report = async (payload) => {
      if (!S.server) return null;
      try { return await S.server.study_report(payload); } catch (e) { console.error(e); return null; }
    };
    // send the counted time: every report keeps its id until the server confirms it (a resent id counts once);
    // resolves when everything counted so far is confirmed or a send failed (submit waits for this)
    S.flush = async () => {
      while (S.sending) await S.sending;
      const run = async () => {
        S.lastReport = Date.now();
        if (S.position && S.ms >= 1) {
          S.queue.push({position: S.position, seconds: S.ms / 1000, id: newId()});
          S.ms = 0;
          store();
        }
        while (S.queue.length) {
          const item = S.queue[0];
          const answer = await S.report({key: S.key, position: item.position, seconds: item.seconds, id: item.id});
          if (answer === null) return;  // offline or refused: kept for the next try
          S.queue.shift();
          store();
        }
      };
      S.sending = run();
      await S.sending;
      S.sending = null;
    };
    window.addEventListener('pagehide', store);
    // Back after logging out may restore this page from the browser's cache: load it again (→ the login form).
    window.addEventListener('pageshow', (ev) => { if (ev.persisted) location.reload(); });
    // Any request refused for want of a session (logged out elsewhere, session expired): go to the login form.
    const fetch0 = window.fetch.bind(window);
    window.fetch = async (...args) => {
      const response = await fetch0(...args);
      const url = String(args[0] && args[0].url ? args[0].url : args[0]);
      if (response.status === 401 && url.includes('gradio_api')) location.replace(new URL('login', location.href).href);
      return response;
    };

    // ---- drafts ------------------------------------------------------------------------------------------------
    const answers = (side) => Array.from({length: 6}, (_, q) => {
      const checked = document.querySelector(`#study-q-${side}-${q} input[type=radio]:checked`);
      return checked ? checked.value : null;
    });
    const comment = () => { const box = document.querySelector('#study-comment textarea'); return box ? box.value : ''; };
    const draftState = (text) => { const el = S.host && S.host.querySelector('.study-draft-state'); if (el) el.textContent = text; };
    S.saveDraft = async () => {
      if (!S.position) return;
      const position = S.position;
      const answer = await S.report({key: S.key, position, draft: {a: answers('a'), b: answers('b'), comment: comment()}});
      if (position !== S.position) return;
      draftState(answer && answer.draft ? `Draft kept on the server (${new Date().toLocaleTimeString()}): ` +
        'your answers come back after a reload. They count only when you press Submit.'
        : 'Draft not kept: your answers stay on this page only until you press Submit.');
    };
    const soon = (ms) => { clearTimeout(S.draftTimer); S.draftTimer = setTimeout(S.saveDraft, ms); };
    document.addEventListener('change', (ev) => { if (ev.target.closest && ev.target.closest('#study-questions')) soon(150); });
    document.addEventListener('input', (ev) => { if (ev.target.closest && ev.target.closest('#study-comment')) soon(1200); });
    S.beforeSubmit = async () => { clearTimeout(S.draftTimer); await S.flush(); };

    // ---- a new screen from Python ------------------------------------------------------------------------------
    S.toast = (text) => {
      let toast = document.querySelector('#study-toast');
      if (!toast) {
        toast = document.createElement('div');
        toast.id = 'study-toast';
        toast.setAttribute('role', 'status');
        toast.setAttribute('aria-live', 'polite');
        document.body.appendChild(toast);
      }
      toast.textContent = text;
      toast.classList.remove('study-toast-show');
      void toast.offsetWidth;  // restart the animation
      toast.classList.add('study-toast-show');
    };
    S.screen = (v) => {
      if (!v || typeof v !== 'object') return;
      S.idleMs = 1000 * (v.idle_s || 120);
      S.reportMs = 1000 * (v.report_s || 15);
      if (!S.started && v.key) {  // the first screen of this page: take over what an earlier page left unsent
        S.started = true;
        let pending = null;
        try { pending = JSON.parse(sessionStorage.getItem(STORE) || 'null'); } catch (e) { pending = null; }
        if (pending && pending.key === v.key) {
          S.queue = Array.isArray(pending.queue) ? pending.queue : [];
          if (pending.position && pending.ms >= 1) S.queue.push({position: pending.position, seconds: pending.ms / 1000, id: newId()});
        }
        S.key = v.key;
        store();
        if (S.queue.length) S.flush();
      }
      if (v.position !== S.position || v.key !== S.key) { S.ms = 0; S.lastReport = Date.now(); }
      S.key = v.key || '';
      S.position = v.position || 0;
      S.lastInput = Date.now();  // a new screen counts as input: the reader is looking at it
      store();
      if (v.position) draftState(v.draft || '');
      if (v.event === 'saved') {
        window.scrollTo({top: 0, behavior: 'auto'});
        const first = document.querySelector('#study-case');
        if (first) first.scrollIntoView({block: 'start'});
        S.toast(`✓ Case ${v.saved_number} saved — case ${v.number} of ${v.total} is on screen.`);
      } else if (v.event === 'done') {
        window.scrollTo({top: 0, behavior: 'auto'});
        S.toast('✓ Saved — every case is rated.');
      } else if (v.event === 'missing') {
        setTimeout(() => {
          const missing = document.querySelector('#study-questions .study-missing');
          if (missing) missing.scrollIntoView({block: 'nearest'});
        }, 50);
      }
    };
  }
  const S = window.LegendStudy;
  S.server = server;
  S.host = host;
  watch('value', () => S.screen(props.value));
  S.screen(props.value);
}
