// The exports page: start an export job through the API (POST /projects/{id}/exports), then follow
// every unfinished export of the table (GET /jobs/{id}) until it has succeeded (a download link) or
// failed (its error, in words). Refusals show next to the field the API names.
import { api } from './api.js';
import { cancelJob, finished, followJob, message, show, showRefusal } from './job-kit.js';
import { h } from './widget-kit.js';

const config = JSON.parse(document.getElementById('exports-config').textContent);
const $ = (id) => document.getElementById(id);
const FIELDS = ['format', 'status', 'batch_id', 'min_confidence', 'review_status', 'updated_since', 'questions'];

function clearErrors() {
  for (const name of FIELDS) show(`err-${name}`, '');
  show('export-error', '');
}

/** The form as the API's body (ExportCreate); a number that does not parse is sent as typed, so the
 * API refuses it naming the field. */
function body() {
  const form = $('export-form');
  const out = { format: form.format.value };
  if (form.status.value === 'all') out.all_statuses = true;
  else out.status = form.status.value;
  if (form.batch_id.value) out.batch_id = form.batch_id.value;
  const confidence = form.min_confidence.value.trim();
  if (confidence) out.min_confidence = Number.isNaN(Number(confidence)) ? confidence : Number(confidence);
  if (form.review_status.value) out.review_status = form.review_status.value;
  if (form.delta.checked && config.last_cursor) out.updated_since = config.last_cursor;
  const questions = [...form.querySelectorAll('input[name="questions"]:checked')].map((box) => box.value);
  if (questions.length) out.questions = questions;
  return out;
}

/** The job's tasks in words, as the server renders them (dashboard pages' _export_row). */
function filtersText(payload) {
  const filters = Object.entries(payload.filters || {}).filter(([, v]) => v !== null && v !== '');
  const words = filters.map(([k, v]) => `${k.replace(/_/g, ' ')} ${v}`).join(', ') || 'all tasks';
  return payload.questions && payload.questions.length ? `${words}; questions ${payload.questions.join(', ')}` : words;
}

function statusCell(job) {
  const cell = h('td', { 'data-cell': 'status' }, h('span', { class: 'badge' }, job.status));
  if (job.error) cell.append(' ', h('span', { class: 'form-error' }, job.error));
  return cell;
}

function progressCell(job) {
  const { done, total } = job.progress;
  if (total) return h('td', { 'data-cell': 'progress' }, h('progress', { max: total, value: done }), ` ${done} / ${total}`);
  const tasks = job.result && job.result.tasks;
  return h('td', { 'data-cell': 'progress' }, tasks !== undefined && tasks !== null ? `${tasks} tasks` : '');
}

function fileCell(job) {
  if (!finished(job) && (config.cancel_any || job.created_by === config.member_id)) {
    const button = h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'data-cancel': job.id }, 'Cancel');
    return h('td', { 'data-cell': 'file' }, button);
  }
  if (job.status !== 'succeeded') return h('td', { 'data-cell': 'file' });
  const result = job.result || {};
  const size = result.size !== undefined ? ` (${result.size} bytes)` : '';
  const link = h('a', { class: 'btn btn-small', href: `/api/v1/exports/${job.id}/file`, download: result.download_name || '', 'data-download': true }, `Download${size}`);
  return h('td', { 'data-cell': 'file' }, link);
}

function row(job) {
  const started = new Date(job.created_at).toISOString().slice(0, 16).replace('T', ' ');
  return h(
    'tr',
    { 'data-job': job.id, 'data-status': job.status },
    h('td', {}, `${started} UTC`),
    h('td', {}, job.payload.format),
    h('td', {}, filtersText(job.payload)),
    statusCell(job),
    progressCell(job),
    fileCell(job),
  );
}

function put(job) {
  const fresh = row(job);
  const old = document.querySelector(`#export-rows tr[data-job="${job.id}"]`);
  if (old) old.replaceWith(fresh);
  else $('export-rows').prepend(fresh);
  $('exports-empty').hidden = true;
}

/** Follow one job until it finishes; a lost connection is retried at the next tick. */
function follow(jobId) {
  return followJob(jobId, put, (error) => show('export-error', `Export ${jobId}: ${message(error)}`));
}

async function start(event) {
  event.preventDefault();
  clearErrors();
  const button = $('export-start');
  button.disabled = true;
  try {
    const { data } = await api('POST', `/projects/${encodeURIComponent(config.project_id)}/exports`, { body: body() });
    put(data);
    follow(data.id);
  } catch (error) {
    showRefusal(error, 'export-error');
  } finally {
    button.disabled = false;
  }
}

/** Cancel a queued or running export (POST /jobs/{id}/cancel): it writes no file. */
async function cancel(event) {
  const button = event.target.closest('[data-cancel]');
  if (!button) return;
  button.disabled = true;
  try {
    put(await cancelJob(button.dataset.cancel));
  } catch (error) {
    show('export-error', `Export ${button.dataset.cancel}: ${message(error)}`);
    button.disabled = false;
  }
}

$('export-form').addEventListener('submit', start);
$('export-rows').addEventListener('click', cancel);
for (const jobId of config.running) follow(jobId);
