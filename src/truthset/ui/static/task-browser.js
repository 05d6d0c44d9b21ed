// The task browser's selection and bulk actions. The list itself is rendered on the server (a GET
// form: a filtered view is a link); this module lets a manager tick tasks, or take every task
// matching the filter (counted by the API first), and apply one action to them through the REST API
// (POST /projects/{id}/tasks/actions), after a confirmation in a modal <dialog>. The server checks
// the permission again; the bar is only rendered for roles that may manage tasks.
import { api, ApiError } from './api.js';

const config = JSON.parse(document.getElementById('browser-config').textContent);
const $ = (id) => document.getElementById(id);
const boxes = () => [...document.querySelectorAll('input.select-task')];
const ACTIONS = {
  set_priority: { verb: 'Set the priority of', done: 'priority set' },
  cancel: { verb: 'Cancel', done: 'canceled' },
  requeue: { verb: 'Re-queue', done: 're-queued' },
  promote_gold: { verb: 'Promote the result to gold of', done: 'promoted to gold' },
};
// null: the ticked boxes; a number: every task matching the filter (that many, when counted)
let matching = null;

const message = (error) => (error instanceof ApiError ? error.message : `The server could not be reached (${error.message}).`);

function showError(text) {
  const el = $('err-bulk');
  el.textContent = text || '';
  el.hidden = !text;
}

function ticked() {
  return boxes().filter((box) => box.checked).map((box) => box.value);
}

function refresh() {
  const count = matching === null ? ticked().length : matching;
  const what = matching === null ? 'selected on this page' : 'matching the filter selected';
  $('selection-status').textContent = count ? `${count} task${count === 1 ? '' : 's'} ${what}.` : 'No task selected.';
  $('bulk-apply').disabled = count === 0 || config.archived;
  $('priority-field').hidden = $('bulk-action').value !== 'set_priority';
  const all = boxes();
  $('select-page').checked = all.length > 0 && all.every((box) => box.checked);
}

function target() {
  return matching === null ? { ids: ticked() } : { filter: config.filter };
}

function body() {
  const action = $('bulk-action').value;
  const request = { action, ...target() };
  if (action === 'set_priority') request.priority = Number.parseInt($('bulk-priority').value, 10);
  return request;
}

async function selectMatching() {
  showError('');
  try {
    const { data: counted } = await api('POST', `/projects/${encodeURIComponent(config.project_id)}/tasks/actions`, {
      body: { action: 'cancel', filter: config.filter, dry_run: true },
    });
    matching = counted.matched;
    for (const box of boxes()) box.checked = true;
  } catch (error) {
    showError(message(error));
  }
  refresh();
}

function confirmBulk(text) {
  const dialog = $('bulk-dialog');
  $('bulk-title').textContent = 'Apply to these tasks?';
  $('bulk-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    $('bulk-yes').focus();
  });
}

async function apply() {
  showError('');
  const request = body();
  if (request.action === 'set_priority' && !Number.isInteger(request.priority)) {
    showError('priority must be a whole number');
    $('bulk-priority').focus();
    return;
  }
  const count = matching === null ? request.ids.length : matching;
  const action = ACTIONS[request.action];
  const scope = matching === null ? `${count} selected task${count === 1 ? '' : 's'}` : `all ${count} tasks matching the filter`;
  const detail = request.action === 'set_priority' ? ` to ${request.priority}` : '';
  if (!(await confirmBulk(`${action.verb} ${scope}${detail}. Tasks the action does not apply to are skipped.`))) return;
  $('bulk-apply').disabled = true;
  $('selection-status').textContent = 'Working…';
  try {
    const { data: result } = await api('POST', `/projects/${encodeURIComponent(config.project_id)}/tasks/actions`, {
      body: request,
      timeoutMs: 120000,
    });
    sessionStorage.setItem('truthset-bulk-result', `${result.changed} ${action.done}, ${result.skipped} skipped.`);
    window.location.reload();
  } catch (error) {
    showError(message(error));
    refresh();
  }
}

function start() {
  if (!$('bulk-bar')) return;
  const last = sessionStorage.getItem('truthset-bulk-result');
  if (last) {
    sessionStorage.removeItem('truthset-bulk-result');
    $('selection-status').textContent = `Done: ${last}`;
  }
  document.addEventListener('change', (event) => {
    if (event.target.matches('input.select-task')) {
      matching = null;
      refresh();
    }
  });
  $('select-page').addEventListener('change', (event) => {
    matching = null;
    for (const box of boxes()) box.checked = event.target.checked;
    refresh();
  });
  $('select-matching').addEventListener('click', selectMatching);
  $('bulk-action').addEventListener('change', refresh);
  $('bulk-apply').addEventListener('click', apply);
  $('priority-field').hidden = $('bulk-action').value !== 'set_priority';
  if (!last) refresh();
}

start();
