// The import page: the chosen file is the body of POST /projects/{id}/imports (streamed by the
// browser, never read into script), then the import job is followed (GET /jobs/{id}) until its
// report: lines received, created, existing, invalid, and the invalid lines with their numbers.
import { ApiError, API, csrfToken } from './api.js';
import { cancelJob, finished, followJob, message, show } from './job-kit.js';
import { h } from './widget-kit.js';

const config = JSON.parse(document.getElementById('import-config').textContent);
const $ = (id) => document.getElementById(id);

/** POST a file as the raw body of ``path`` (the browser streams it; it is never read into script). */
async function postFile(path, file, contentType) {
  let response;
  try {
    response = await fetch(`${API}${path}`, {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': contentType, 'X-CSRF-Token': csrfToken },
      body: file,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (error) {
    throw new Error(`the upload did not reach the server (${error.message})`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const projectPath = `/projects/${encodeURIComponent(config.project_id)}`;

function showReport(job) {
  const report = job.result || {};
  $('import-report').hidden = false;
  for (const key of ['received', 'created', 'existing', 'invalid']) {
    document.querySelector(`[data-report="${key}"]`).textContent = report[key] ?? '—';
  }
  const errors = report.errors || [];
  $('import-errors').hidden = errors.length === 0;
  $('import-error-rows').replaceChildren(...errors.map((e) => h('tr', {}, h('td', {}, String(e.line)), h('td', {}, e.message))));
}

function showJob(job) {
  const { done, total } = job.progress;
  const bar = $('import-bar');
  bar.max = total || 1;
  bar.value = total ? done : 0;
  const words = {
    queued: 'Waiting for a worker process…',
    running: total ? `Importing: ${done} of ${total}…` : `Importing: ${done} lines so far…`,
    succeeded: 'Imported.',
    failed: job.result ? 'Nothing was stored: some lines are invalid (see below).' : `The import failed: ${job.error}`,
    canceled: 'The import was canceled: tasks it had stored stay, and importing the file again adds only the others.',
  };
  $('import-state').textContent = words[job.status] || job.status;
  document.getElementById('import-progress').dataset.status = job.status;
  const cancel = $('import-cancel');
  cancel.dataset.job = job.id;
  cancel.hidden = finished(job);
  if (job.status === 'succeeded' || job.result) showReport(job);
}

function follow(jobId) {
  return followJob(jobId, showJob, (error) => show('import-error', message(error)));
}

async function start(event) {
  event.preventDefault();
  const form = $('import-form');
  for (const name of ['filename', 'format', 'batch_id']) show(`err-${name}`, '');
  show('import-error', '');
  const file = form.file.files[0];
  if (!file) {
    show('err-filename', 'Choose a file to import.');
    return;
  }
  if (config.max_bytes && file.size > config.max_bytes) {
    show('err-filename', `The file is ${file.size} bytes; this server takes at most ${config.max_bytes}.`);
    return;
  }
  const params = new URLSearchParams({ filename: file.name, on_error: form.on_error.value });
  if (form.format.value) params.set('format', form.format.value);
  if (form.batch_id.value) params.set('batch_id', form.batch_id.value);
  const button = $('import-start');
  button.disabled = true;
  $('import-progress').hidden = false;
  $('import-report').hidden = true;
  $('import-state').textContent = `Uploading ${file.name}…`;
  try {
    const job = await postFile(`${projectPath}/imports?${params}`, file, 'application/octet-stream');
    showJob(job);
    await follow(job.id);
  } catch (error) {
    const field = error instanceof ApiError && error.details && String(error.details.field || '').replace(/^query\./, '');
    if (!field || !show(`err-${field}`, error.message)) show('import-error', message(error));
    $('import-progress').hidden = true;
  } finally {
    button.disabled = false;
  }
}

if ($('import-form')) $('import-form').addEventListener('submit', start);

/** Cancel the import being followed (POST /jobs/{id}/cancel): it stops at its next progress report. */
async function cancelImport() {
  const button = $('import-cancel');
  button.disabled = true;
  try {
    showJob(await cancelJob(button.dataset.job));
  } catch (error) {
    show('import-error', message(error));
  } finally {
    button.disabled = false;
  }
}

$('import-cancel').addEventListener('click', cancelImport);

// Gold from a CSV: the file is the body of POST /projects/{id}/gold (text/csv), all lines or none.
async function markGold(event) {
  event.preventDefault();
  show('err-gold', '');
  $('gold-status').textContent = '';
  const file = $('g-file').files[0];
  if (!file) {
    show('err-gold', 'Choose a CSV of gold answers.');
    return;
  }
  const button = $('gold-start');
  button.disabled = true;
  $('gold-status').textContent = `Uploading ${file.name}…`;
  try {
    const data = await postFile(`${projectPath}/gold`, file, 'text/csv');
    $('gold-status').textContent = `${data.received} lines: ${data.marked} tasks marked gold, ${data.updated} gold answers replaced.`;
  } catch (error) {
    $('gold-status').textContent = '';
    show('err-gold', message(error));
  } finally {
    button.disabled = false;
  }
}

if ($('gold-form')) $('gold-form').addEventListener('submit', markGold);
