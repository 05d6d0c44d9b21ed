// The annotator workbench. Leases tasks through the REST API, shows one at a time, and never loses
// an answer:
//
// * Drafts: every change is saved in localStorage under the assignment id; a reload restores the
//   task it was showing (its lease is still ours) and the draft.
// * Outbox: an answer is written to localStorage *before* it is sent, with an Idempotency-Key
//   derived from the assignment ("asg-<id>"), and removed only when the server acknowledges it.
//   Network failures leave it there; it is retried (with the same key, so a retry whose first try
//   did land stores nothing twice) on a back-off timer, when the browser comes back online, and on
//   the next page load.
// * Prefetch: while the worker answers task N, task N+1 is already leased and loaded, so Submit
//   shows the next task at once (and even offline). A prefetched lease is given back when the page
//   goes away (a keepalive request on `pagehide`); if that request is lost, the lease simply expires.
//   A prefetched lease close to its deadline is given back instead of being shown.
import { api, beacon, retryable, serverNow } from './api.js';
import { preloadImages, renderFields } from './fields.js';
import { createStore, Outbox } from './store.js';
import { h, letter, listWidgetKeys, widgetModules } from './widget-kit.js';

const config = JSON.parse(document.getElementById('workbench-config').textContent);
const store = createStore(config.member_id);
const outbox = new Outbox(store);
const questions = config.questions;
const currentKey = `current:${config.project_id}`;
const progressKey = `truthset:progress:${config.member_id}:${config.project_id}`;
const MAX_DURATION_MS = 7 * 24 * 3600 * 1000;
const PREFETCH_MARGIN_MS = 30000;

const $ = (id) => document.getElementById(id);
const root = $('workbench');
const form = $('task');
const fieldsets = [...document.querySelectorAll('fieldset.question')];
const widgets = [];

const state = {
  panel: 'loading',
  current: null, // { assignment, shownAt }
  prefetched: null,
  prefetching: null,
  busy: false,
  active: 0,
  order: questions.map((_, index) => index), // question indexes in the order they are shown
  inflight: new Set(),
  retryTimer: null,
  leaseRetryTimer: null,
  attempt: 0,
  authLost: false,
};

// --- small views -------------------------------------------------------------------------------

function setPanel(name) {
  state.panel = name;
  root.dataset.state = name;
  for (const panel of document.querySelectorAll('[data-panel]')) panel.hidden = panel.dataset.panel !== name;
  updateLease();
}

function progress() {
  try {
    return JSON.parse(sessionStorage.getItem(progressKey)) || { answered: 0, skipped: 0 };
  } catch {
    return { answered: 0, skipped: 0 };
  }
}

function count(kind) {
  const value = progress();
  value[kind] = (value[kind] || 0) + 1;
  try {
    sessionStorage.setItem(progressKey, JSON.stringify(value));
  } catch {
    // private mode: the counter just resets
  }
  updateProgress();
}

function updateProgress() {
  const { answered, skipped } = progress();
  $('progress').textContent = `${answered} answered this session${skipped ? ` · ${skipped} skipped` : ''}`;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function updateSync() {
  const waiting = outbox.list();
  const n = waiting.length;
  const el = $('sync');
  let text;
  let level;
  if (!n) {
    text = 'All answers saved';
    level = 'saved';
  } else if (state.authLost) {
    text = `Signed out — ${plural(n, 'answer')} waiting`;
    level = 'error';
  } else if (!navigator.onLine) {
    text = `Offline — ${plural(n, 'answer')} waiting`;
    level = 'offline';
  } else {
    text = `Saving — ${plural(n, 'answer')} waiting`;
    level = 'pending';
  }
  el.textContent = text;
  el.dataset.sync = level;
  el.dataset.waiting = String(n);
}

function notice(message, link) {
  const el = $('notice');
  el.replaceChildren(document.createTextNode(message));
  if (link) el.append(' ', h('a', { href: link.href, text: link.text }));
  el.hidden = !message;
}

function updateLease() {
  const el = $('lease');
  if (!state.current || state.panel !== 'task') {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  const left = Date.parse(state.current.assignment.expires_at) - serverNow();
  if (left <= 0) {
    el.textContent = 'Lease expired: the answer still counts if the task needs one';
    el.dataset.level = 'expired';
    return;
  }
  const minutes = Math.floor(left / 60000);
  const seconds = Math.floor(left / 1000) % 60;
  el.textContent = `Lease ends in ${minutes}:${String(seconds).padStart(2, '0')}`;
  el.dataset.level = left < 60000 ? 'warn' : 'ok';
}

function setBusy(busy) {
  state.busy = busy;
  form.setAttribute('aria-busy', busy ? 'true' : 'false');
  for (const id of ['submit', 'skip', 'release']) $(id).disabled = busy;
}

// --- questions ---------------------------------------------------------------------------------

async function loadWidgets() {
  const modules = await widgetModules(questions, config.widgets);
  questions.forEach((question, index) => {
    const fieldset = fieldsets[index];
    // next(): move on from this question (a widget's own Enter); false on the last one, whose
    // Enter then submits
    const next = () => {
      const at = state.order.indexOf(index);
      return at < questions.length - 1 && (focusQuestion(state.order[at + 1]), true);
    };
    const ctx = { index, id: `q${index}`, fieldset, changed: () => changed(index), next };
    widgets[index] = modules[question.type].mount(fieldset.querySelector('.widget'), question, ctx);
  });
  listWidgetKeys(document.querySelector('.keymap'), widgets);
}

function collect() {
  const answer = {};
  questions.forEach((question, index) => {
    const value = widgets[index].get();
    if (value !== null && value !== undefined) answer[question.name] = value;
  });
  return answer;
}

function firstMissing() {
  const missing = (i) => questions[i].required && (widgets[i].get() === null || widgets[i].get() === undefined);
  return state.order.find(missing) ?? -1;
}

/** Move `delta` questions on, in the order shown (past the last one: the Submit button). */
function step(delta) {
  const at = state.order.indexOf(state.active) + delta;
  focusQuestion(at >= state.order.length ? widgets.length : state.order[Math.max(0, at)]);
}

// A question asked for each candidate (`grade-0`, `grade-1`: copies with a `candidate` index) is shown
// under the letter its candidate has for this assignment, and the copies in the order the candidates
// are shown, so "B" is always the reply shown second, whatever its index in the data.
function candidatePosition(question, display) {
  const shown = display ? display[question.for_each] : null;
  const at = Array.isArray(shown) ? shown.indexOf(question.candidate) : -1;
  return at >= 0 ? at : question.candidate;
}

function arrangeQuestions(display) {
  const isCopy = (q) => q.candidate !== null && q.candidate !== undefined;
  const firstOfGroup = new Map();
  questions.forEach((q, index) => {
    if (isCopy(q) && !firstOfGroup.has(q.group)) firstOfGroup.set(q.group, index);
  });
  const place = (index) => {
    const q = questions[index];
    return isCopy(q) ? [firstOfGroup.get(q.group), candidatePosition(q, display)] : [index, 0];
  };
  state.order = questions.map((_, index) => index).sort((a, b) => {
    const [pa, qa] = place(a);
    const [pb, qb] = place(b);
    return pa - pb || qa - qb;
  });
  const container = fieldsets.length ? fieldsets[0].parentElement : null;
  state.order.forEach((index, shownAt) => {
    const fieldset = fieldsets[index];
    fieldset.querySelector('.q-number').textContent = String(shownAt + 1);
    const badge = fieldset.querySelector('.q-candidate');
    if (badge) badge.textContent = letter(candidatePosition(questions[index], display));
    if (container) container.append(fieldset);
  });
}

function showQuestionError(index, message) {
  const fieldset = fieldsets[index];
  const el = fieldset.querySelector('.q-error');
  el.textContent = message;
  el.hidden = false;
  el.setAttribute('role', 'alert');
  fieldset.classList.add('invalid');
  fieldset.setAttribute('aria-invalid', 'true');
}

function clearQuestionError(index) {
  const fieldset = fieldsets[index];
  const el = fieldset.querySelector('.q-error');
  el.hidden = true;
  el.textContent = '';
  fieldset.classList.remove('invalid');
  fieldset.removeAttribute('aria-invalid');
}

function clearErrors() {
  questions.forEach((_, index) => clearQuestionError(index));
  $('form-error').hidden = true;
}

function formError(message) {
  const el = $('form-error');
  el.textContent = message;
  el.hidden = false;
}

/** A 422 from the API: "answer.<question>: <problem>" goes next to that question. */
function showServerError(error) {
  const match = /^answer\.([A-Za-z_][\w-]*): ([\s\S]*)$/.exec(error.message || '');
  const index = match ? questions.findIndex((q) => q.name === match[1]) : -1;
  if (index >= 0) {
    showQuestionError(index, match[2]);
    focusQuestion(index);
  } else {
    formError(error.message);
  }
}

function markActive() {
  fieldsets.forEach((fieldset, index) => fieldset.classList.toggle('active', index === state.active));
}

function focusQuestion(index) {
  if (index >= widgets.length) {
    state.active = widgets.length - 1;
    markActive();
    $('submit').focus();
    return;
  }
  state.active = Math.max(0, index);
  markActive();
  widgets[state.active].focus();
}

function changed(index) {
  clearQuestionError(index);
  if (!state.current) return;
  store.set(`draft:${state.current.assignment.id}`, collect());
  $('draft').textContent = 'Draft saved in this browser';
}

// --- the task on screen ------------------------------------------------------------------------

function show(assignment, shownAt = Date.now()) {
  state.current = { assignment, shownAt };
  store.set(currentKey, state.current);
  // a field a widget shows itself (the image boxes are drawn on, the text spans mark) is not shown twice
  const owned = new Set(widgets.map((widget) => widget.ownsField).filter(Boolean));
  const shownFields = config.fields.filter((field) => !owned.has(field.name));
  renderFields($('fields'), shownFields, assignment.task.data, assignment.display);
  $('fields').hidden = !$('fields').children.length;
  arrangeQuestions(assignment.display);
  const draft = store.get(`draft:${assignment.id}`, {}) || {};
  // a model's prediction the form starts from (the policy's prefill_predictions; docs/models.md)
  const predicted = assignment.predictions || {};
  questions.forEach((question, index) => {
    // widgets that show the task's own data (ranking: its candidates; spans: the text it marks)
    if (widgets[index].task) widgets[index].task(assignment);
    const prediction = predicted[question.name];
    widgets[index].set(draft[question.name] ?? prediction?.answer ?? null, assignment.task.data);
    showPrediction(index, prediction);
  });
  clearErrors();
  $('draft').textContent = Object.keys(draft).length ? 'Draft restored' : '';
  form.dataset.assignment = assignment.id;
  form.dataset.task = assignment.task.id;
  setPanel('task');
  const missing = firstMissing();
  focusQuestion(Object.keys(draft).length && missing >= 0 ? missing : state.order[0]);
  prefetch();
}

/** Say under a question that its answer starts from a model's prediction (or clear it). */
function showPrediction(index, prediction) {
  const fieldset = fieldsets[index];
  let note = fieldset.querySelector('.q-prefill');
  if (!prediction) {
    if (note) note.hidden = true;
    return;
  }
  if (!note) {
    note = document.createElement('p');
    note.className = 'q-prefill muted';
    fieldset.querySelector('.widget').before(note);
  }
  const score = typeof prediction.score === 'number' ? ` (score ${prediction.score.toFixed(2)})` : '';
  note.textContent = `Pre-filled by ${prediction.model}${score}: check it, change it if it is wrong.`;
  note.hidden = false;
}

/** Per pre-filled question, the prediction shown: the server records whether the answer kept it. */
function prefillOf(assignment) {
  const shown = {};
  for (const [name, prediction] of Object.entries(assignment.predictions || {})) shown[name] = prediction.response_id;
  return Object.keys(shown).length ? shown : undefined;
}

function finish(assignment, outcome) {
  store.remove(`draft:${assignment.id}`);
  store.remove(currentKey);
  state.current = null;
  if (outcome) count(outcome);
}

// --- leases ------------------------------------------------------------------------------------

async function lease() {
  const result = await api('POST', `/projects/${encodeURIComponent(config.project_id)}/next`);
  return result.status === 204 ? null : result.data;
}

function prefetch() {
  if (state.prefetched || state.prefetching || !state.current) return;
  root.dataset.prefetch = 'loading'; // 'ready' once the next task (and its images) is in hand: tests wait on it
  state.prefetching = lease()
    .then(async (assignment) => {
      // its images decoded now, so Submit shows the next task without waiting for a download
      if (assignment) await preloadImages(config.fields, assignment.task.data);
      state.prefetched = assignment;
    })
    .catch(() => {
      state.prefetched = null; // offline or refused: the next task is leased when it is needed
    })
    .finally(() => {
      state.prefetching = null;
      root.dataset.prefetch = 'ready';
    });
}

async function takePrefetched() {
  if (state.prefetching) await state.prefetching;
  const assignment = state.prefetched;
  state.prefetched = null;
  if (!assignment) return undefined;
  if (Date.parse(assignment.expires_at) - serverNow() > PREFETCH_MARGIN_MS) return assignment;
  giveBack(assignment.id);
  return undefined;
}

function giveBack(assignmentId) {
  api('POST', `/assignments/${encodeURIComponent(assignmentId)}/release`).catch(() => {});
}

async function releasePrefetched() {
  if (state.prefetching) await state.prefetching;
  const assignment = state.prefetched;
  state.prefetched = null;
  if (assignment) giveBack(assignment.id);
}

async function nextTask() {
  clearTimeout(state.leaseRetryTimer);
  let assignment = await takePrefetched();
  if (assignment === undefined) {
    setPanel('loading');
    try {
      assignment = await lease();
    } catch (error) {
      leaseFailed(error);
      return;
    }
  }
  if (!assignment) {
    setPanel('empty');
    document.querySelector('[data-panel="empty"] [data-action="resume"]').focus();
    return;
  }
  show(assignment);
}

function leaseFailed(error) {
  if (error.code === 'busy') {
    // the server lost a race and changed nothing (the tasks left were being written): not offline
    setPanel('loading');
    state.leaseRetryTimer = setTimeout(() => {
      if (state.panel === 'loading') nextTask();
    }, 1000);
    return;
  }
  if (retryable(error)) {
    setPanel('offline');
    const delay = Math.min(15000, 1000 * 2 ** Math.min(state.attempt, 4));
    state.leaseRetryTimer = setTimeout(() => {
      if (state.panel === 'offline') nextTask();
    }, delay);
    return;
  }
  if (error.status === 401) {
    state.authLost = true;
    updateSync();
  }
  $('panel-error-message').textContent =
    error.status === 401 ? 'Your session has ended. Sign in again: answers waiting here are kept.' : error.message;
  setPanel('error');
  if (error.status === 401) notice('Signed out.', { href: `/login?next=${encodeURIComponent(location.pathname)}`, text: 'Sign in again' });
}

// --- sending -----------------------------------------------------------------------------------

async function send(entry) {
  state.inflight.add(entry.key);
  try {
    if (entry.kind === 'response') {
      await api('POST', `/tasks/${encodeURIComponent(entry.task_id)}/responses`, {
        body: {
          answer: entry.answer,
          assignment_id: entry.assignment_id,
          duration_ms: entry.duration_ms,
          ...(entry.prefill ? { prefill: entry.prefill } : {}),
        },
        headers: { 'Idempotency-Key': entry.key },
      });
    } else {
      await api('POST', `/assignments/${encodeURIComponent(entry.assignment_id)}/${entry.kind}`);
    }
    outbox.remove(entry.key);
    state.authLost = false;
    return { ok: true };
  } catch (error) {
    if (retryable(error)) return { queued: true, error };
    if (error.status === 401 || error.code === 'csrf_failed') {
      state.authLost = true;
      notice('Signed out: answers waiting in this browser are sent after you sign in.', {
        href: `/login?next=${encodeURIComponent(location.pathname)}`,
        text: 'Sign in again',
      });
      return { queued: true, error };
    }
    if (entry.kind !== 'response' && error.status === 409) {
      outbox.remove(entry.key); // the lease had already ended: nothing left to do
      return { ok: true };
    }
    return { rejected: true, error };
  } finally {
    state.inflight.delete(entry.key);
    updateSync();
  }
}

let flushing = null;

function flush() {
  if (flushing) return flushing;
  flushing = (async () => {
    clearTimeout(state.retryTimer);
    for (const entry of outbox.list()) {
      if (state.inflight.has(entry.key)) continue;
      const result = await send(entry);
      if (result.queued) {
        if (!state.authLost) scheduleRetry();
        return;
      }
      if (result.rejected) {
        outbox.remove(entry.key);
        notice(`An answer sent late was not accepted (task ${entry.task_id || entry.assignment_id}): ${result.error.message}`);
      }
    }
    state.attempt = 0;
  })().finally(() => {
    flushing = null;
    updateSync();
  });
  return flushing;
}

function scheduleRetry() {
  state.attempt += 1;
  const delay = Math.min(15000, 500 * 2 ** Math.min(state.attempt, 5)) + Math.random() * 250;
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(flush, delay);
}

// --- actions -----------------------------------------------------------------------------------

async function submit() {
  if (state.panel !== 'task' || !state.current || state.busy) return;
  clearErrors();
  const missing = firstMissing();
  if (missing >= 0) {
    showQuestionError(missing, 'An answer is required.');
    focusQuestion(missing);
    return;
  }
  const { assignment, shownAt } = state.current;
  const entry = {
    kind: 'response',
    key: `asg-${assignment.id}`,
    task_id: assignment.task.id,
    assignment_id: assignment.id,
    answer: collect(),
    prefill: prefillOf(assignment),
    duration_ms: Math.min(MAX_DURATION_MS, Math.max(0, Math.round(Date.now() - shownAt))),
    queued_at: new Date().toISOString(),
  };
  outbox.put(entry); // on disk before it goes on the wire
  setBusy(true);
  updateSync();
  const result = await send(entry);
  setBusy(false);
  if (result.rejected) {
    outbox.remove(entry.key);
    if (result.error.status === 422) {
      showServerError(result.error); // stay on the task: fix the answer and submit again
      return;
    }
    notice(`That answer was not accepted: ${result.error.message}`);
  } else if (result.queued && !state.authLost) {
    scheduleRetry();
  }
  finish(assignment, result.rejected ? null : 'answered');
  await nextTask();
}

async function endAssignment(kind) {
  if (state.panel !== 'task' || !state.current || state.busy) return;
  const { assignment } = state.current;
  const entry = { kind, key: `${kind}-${assignment.id}`, assignment_id: assignment.id };
  outbox.put(entry);
  setBusy(true);
  const result = await send(entry);
  setBusy(false);
  if (result.rejected) {
    outbox.remove(entry.key);
    if (result.error.status !== 404) {
      formError(result.error.message);
      return;
    }
  } else if (result.queued && !state.authLost) {
    scheduleRetry();
  }
  finish(assignment, kind === 'skip' ? 'skipped' : null);
  if (kind === 'skip') {
    await nextTask();
  } else {
    await releasePrefetched();
    setPanel('released');
    document.querySelector('[data-panel="released"] [data-action="resume"]').focus();
  }
}

// --- keyboard ----------------------------------------------------------------------------------

const TYPING =
  'textarea, select, input:not([type]), input[type="text"], input[type="search"], input[type="number"], input[type="email"], input[type="url"], [contenteditable]';

function questionIndexOf(element) {
  const fieldset = element && element.closest ? element.closest('fieldset.question') : null;
  return fieldset ? Number(fieldset.dataset.index) : -1;
}

// The workbench's own keys come with the page (config.keys: action -> key), from the list that spec
// validation keeps option hotkeys off, so a spec hotkey never does a second thing.
const ACTIONS = {
  skip: () => endAssignment('skip'),
  release: () => endAssignment('release'),
  next: () => step(1),
  previous: () => step(-1),
};
const keyActions = Object.fromEntries(Object.entries(config.keys).map(([action, key]) => [key, ACTIONS[action]]));

function onKey(event) {
  if (event.defaultPrevented || event.isComposing || state.panel !== 'task') return;
  const target = event.target instanceof Element ? event.target : null;
  const inTask = !target || target === document.body || target.id === 'main' || form.contains(target);
  if (!inTask) return; // the instructions, the top bar: keys keep their usual meaning
  const typing = Boolean(target && target.matches(TYPING));
  if (event.key === 'Enter') {
    if (event.altKey || event.shiftKey) return;
    if (target && target.tagName === 'TEXTAREA' && !(event.ctrlKey || event.metaKey)) return;
    if (target && target.tagName === 'BUTTON' && target.closest('.toolbar')) return; // the button's own action
    event.preventDefault();
    submit();
    return;
  }
  if (event.key === 'Escape') {
    event.preventDefault();
    if (typing) {
      const index = questionIndexOf(target);
      if (index >= 0) fieldsets[index].focus();
      else target.blur();
      return;
    }
    endAssignment('release');
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  let handled = widgets[state.active] ? widgets[state.active].key(event) : false;
  if (handled) {
    event.preventDefault();
    if (handled === 'next') step(1);
    return;
  }
  for (let index = 0; index < widgets.length && !handled; index += 1) {
    if (index !== state.active && widgets[index].globalKey) handled = widgets[index].globalKey(event);
  }
  if (handled) {
    event.preventDefault();
    return;
  }
  const action = keyActions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

// --- start -------------------------------------------------------------------------------------

function pruneDrafts(keep) {
  const prefix = `truthset:${config.member_id}:draft:`;
  try {
    for (let i = localStorage.length - 1; i >= 0; i -= 1) {
      const key = localStorage.key(i);
      if (key && key.startsWith(prefix) && key !== `${prefix}${keep}`) localStorage.removeItem(key);
    }
  } catch {
    // ignore
  }
}

function bind() {
  document.addEventListener('keydown', onKey);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  form.addEventListener('focusin', (event) => {
    const index = questionIndexOf(event.target);
    if (index >= 0 && index !== state.active) {
      state.active = index;
      markActive();
    }
  });
  $('skip').addEventListener('click', () => endAssignment('skip'));
  $('release').addEventListener('click', () => endAssignment('release'));
  for (const button of document.querySelectorAll('[data-action="resume"]')) {
    button.addEventListener('click', () => nextTask());
  }
  window.addEventListener('online', () => {
    state.attempt = 0;
    updateSync();
    flush();
    if (state.panel === 'offline') nextTask();
  });
  window.addEventListener('offline', updateSync);
  window.addEventListener('pagehide', () => {
    const assignment = state.prefetched;
    state.prefetched = null;
    if (assignment) beacon(`/assignments/${encodeURIComponent(assignment.id)}/release`);
  });
  window.addEventListener('pageshow', (event) => {
    if (event.persisted && state.panel === 'task') prefetch();
  });
  window.addEventListener('storage', (event) => {
    if (event.key && event.key.endsWith(':outbox')) updateSync();
  });
  setInterval(updateLease, 1000);
}

async function start() {
  await loadWidgets();
  bind();
  updateProgress();
  updateSync();
  flush();
  const saved = store.get(currentKey);
  const live =
    saved &&
    saved.assignment &&
    Date.parse(saved.assignment.expires_at) > serverNow() &&
    !['asg', 'skip', 'release'].some((kind) => outbox.has(`${kind}-${saved.assignment.id}`));
  pruneDrafts(live ? saved.assignment.id : '');
  if (live) {
    show(saved.assignment, saved.shownAt);
  } else {
    store.remove(currentKey);
    await nextTask();
  }
}

start().catch((error) => {
  $('panel-error-message').textContent = `The workbench could not start: ${error.message}`;
  setPanel('error');
});
