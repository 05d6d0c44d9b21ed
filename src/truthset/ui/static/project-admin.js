// The project page's management: its batches (listed in keyset pages with their progress; create,
// finalize, pause, resume, cancel) and the project's own actions (archive, unarchive, delete). Everything goes
// through the REST API; the server checks every permission again, the page only leaves out the
// buttons a role may not use. Every destructive action asks first, in a modal <dialog>.
import { api, ApiError } from './api.js';
import { message, show as showIn } from './job-kit.js';
import { h } from './widget-kit.js';

const config = JSON.parse(document.getElementById('admin-config').textContent);
const $ = (id) => document.getElementById(id);
const PAGE = 20;
const STATUSES = ['staged', 'pending', 'completed', 'canceled'];
const projectPath = `/projects/${encodeURIComponent(config.project_id)}`;

// --- confirmation ----------------------------------------------------------------------------------

/** Ask in the modal dialog; resolves true when confirmed (`typed`: the text to type first). */
function confirmAction({ title, text, yes, typed = null }) {
  const dialog = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-yes').textContent = yes;
  $('confirm-typed').hidden = typed === null;
  $('confirm-input').value = '';
  $('confirm-input').oninput = () => showIn('confirm-error', ''); // a new try: the old mismatch no longer holds
  showIn('confirm-error', '');
  return new Promise((resolve) => {
    const form = $('confirm-form');
    const onSubmit = (event) => {
      if (event.submitter && event.submitter.value === 'yes' && typed !== null && $('confirm-input').value.trim() !== typed) {
        event.preventDefault(); // the dialog stays open until the name matches
        showIn('confirm-error', 'The name does not match: type it exactly to confirm.');
        $('confirm-input').focus();
      }
    };
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener(
      'close',
      () => {
        form.removeEventListener('submit', onSubmit);
        resolve(dialog.returnValue === 'yes');
      },
      { once: true },
    );
    dialog.returnValue = '';
    dialog.showModal();
    (typed === null ? $('confirm-yes') : $('confirm-input')).focus();
  });
}

// --- the project's actions ------------------------------------------------------------------------

async function setArchived(archived) {
  const sure = await confirmAction(
    archived
      ? {
          title: 'Archive this project?',
          text: 'It stops taking new tasks, batches and answers; its data, results and exports stay. You can unarchive it later.',
          yes: 'Archive',
        }
      : { title: 'Unarchive this project?', text: 'It takes tasks and answers again.', yes: 'Unarchive' },
  );
  if (!sure) return;
  try {
    await api('PATCH', projectPath, { body: { archived } });
    window.location.reload();
  } catch (error) {
    showIn('manage-error', message(error));
  }
}

async function deleteProject() {
  if (config.tasks > 0) return deleteWithData();
  const sure = await confirmAction({
    title: 'Delete this project?',
    text: 'It has no tasks; its settings go. This cannot be undone.',
    yes: 'Delete for good',
    typed: config.project_name,
  });
  if (!sure) return;
  try {
    await api('DELETE', projectPath);
    window.location.assign('/');
  } catch (error) {
    showIn('manage-error', message(error));
  }
}

/** A project with tasks: owners and admins delete it with all its data, as a job (followed on /jobs). */
async function deleteWithData() {
  if (!config.may_delete_data) {
    showIn('manage-error', 'This project has tasks: archive it, or ask an owner or admin to delete it with its data.');
    return;
  }
  const tasks = config.tasks.toLocaleString();
  const sure = await confirmAction({
    title: 'Delete this project and all its data?',
    text:
      `Its ${tasks} tasks go, with every answer, review and step of their history, its models, its webhook ` +
      'deliveries and export files. It is archived at once and a background job deletes the rest; its images that ' +
      'no other task uses are removed a day later. This cannot be undone.',
    yes: 'Delete everything for good',
    typed: config.project_name,
  });
  if (!sure) return;
  try {
    const { data: job } = await api('POST', `${projectPath}/deletion`, { body: { confirm: config.project_name } });
    window.location.assign(`/jobs?kind=${encodeURIComponent(job.kind)}`);
  } catch (error) {
    showIn('manage-error', message(error));
  }
}

// --- batches ----------------------------------------------------------------------------------------

let nextCursor = null;

function progress(batch) {
  const counts = batch.counts || {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const done = (counts.completed || 0) + (counts.canceled || 0);
  const label = total ? `${counts.completed || 0} of ${total} completed` : 'no tasks';
  return h(
    'td',
    {},
    total ? h('progress', { max: total, value: done, 'aria-label': `${batch.name}: ${label}` }) : null,
    h('span', { class: 'muted small', text: ` ${label}` }),
  );
}

function actions(batch) {
  const cell = h('td', { class: 'row-actions' });
  const button = (text, action, cls = 'btn btn-small') =>
    h('button', { type: 'button', class: cls, 'data-batch-action': action, 'data-batch-id': batch.id, 'data-batch-name': batch.name, text });
  if (batch.status === 'open' && !config.archived) cell.append(button('Finalize', 'finalize', 'btn btn-small btn-primary'));
  if (batch.status === 'finalized') cell.append(button('Pause', 'pause'));
  if (batch.status === 'paused' && !config.archived) cell.append(button('Resume', 'resume', 'btn btn-small btn-primary'));
  if (['open', 'finalized', 'paused'].includes(batch.status)) cell.append(' ', button('Cancel', 'cancel', 'btn btn-small btn-danger'));
  return cell;
}

function row(batch) {
  const counts = batch.counts || {};
  return h(
    'tr',
    { 'data-batch': batch.name, 'data-batch-id': batch.id, 'data-status': batch.status },
    h('th', { scope: 'row', text: batch.name }),
    h('td', {}, h('span', { class: `badge status-${batch.status}`, text: batch.status })),
    progress(batch),
    STATUSES.map((status) => h('td', { 'data-count': status, text: counts[status] || 0 })),
    config.may_manage_tasks ? actions(batch) : null,
  );
}

async function loadBatches({ more = false } = {}) {
  const section = $('batches');
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (more && nextCursor) query.set('cursor', nextCursor);
  try {
    const { data } = await api('GET', `${projectPath}/batches?${query}`);
    const rows = data.items.map(row);
    if (more) $('batch-rows').append(...rows);
    else $('batch-rows').replaceChildren(...rows);
    nextCursor = data.next_cursor;
    $('batches-more').hidden = !nextCursor;
    $('batches-empty').hidden = $('batch-rows').children.length > 0;
    section.dataset.state = 'ready';
  } catch (error) {
    showIn('batch-error', message(error));
    section.dataset.state = 'error';
  }
}

async function createBatch(event) {
  event.preventDefault();
  const input = $('batch-name');
  showIn('err-batch-name', '');
  input.removeAttribute('aria-invalid');
  const name = input.value.trim();
  try {
    if (!name) throw new ApiError(422, { error: { message: 'name: enter a name for the batch', details: { field: 'name' } } });
    await api('POST', `${projectPath}/batches`, { body: { name } });
    input.value = '';
    await loadBatches();
  } catch (error) {
    showIn('err-batch-name', message(error));
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
}

async function batchAction(button) {
  const { batchAction: action, batchId, batchName } = button.dataset;
  showIn('batch-error', '');
  if (action === 'cancel') {
    const sure = await confirmAction({
      title: `Cancel batch "${batchName}"?`,
      text: 'Its tasks that are not completed are canceled and leave the queue; completed results stay. This cannot be undone.',
      yes: 'Cancel the batch',
    });
    if (!sure) return;
  }
  button.disabled = true;
  try {
    await api('POST', `/batches/${encodeURIComponent(batchId)}/${action}`);
    await loadBatches();
  } catch (error) {
    showIn('batch-error', message(error));
    button.disabled = false;
  }
}

// --- start -------------------------------------------------------------------------------------------

document.addEventListener('click', (event) => {
  const target = event.target.closest('[data-action], [data-batch-action]');
  if (!target) return;
  if (target.dataset.batchAction) batchAction(target);
  else if (target.dataset.action === 'archive') setArchived(true);
  else if (target.dataset.action === 'unarchive') setArchived(false);
  else if (target.dataset.action === 'delete') deleteProject();
});
if ($('batch-form')) $('batch-form').addEventListener('submit', createBatch);
$('batches-more').addEventListener('click', () => loadBatches({ more: true }));
loadBatches();
