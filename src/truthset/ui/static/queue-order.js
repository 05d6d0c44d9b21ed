// The project page's "Queue order" card (docs/quality.md, "Queue order"): the next tasks in the order
// the queue serves them, and for managers the policy's ordering (priority, uncertainty or model_uncertainty) and a
// re-rank on demand. Everything goes through the REST API, which checks every permission again; the
// page only leaves out the controls a role may not use.
import { api } from './api.js';
import { followJob, message, show as say } from './job-kit.js';
import { h } from './widget-kit.js';

const config = JSON.parse(document.getElementById('admin-config').textContent);
const $ = (id) => document.getElementById(id);
const projectPath = `/projects/${encodeURIComponent(config.project_id)}`;
const SHOWN = 10;

async function showQueue() {
  const rows = $('queue-rows');
  try {
    const { data: page } = await api('GET', `${projectPath}/queue?limit=${SHOWN}`);
    rows.replaceChildren(
      ...page.items.map((task) =>
        h(
          'tr',
          {},
          h('td', {}, h('a', { href: `/tasks/${encodeURIComponent(task.id)}` }, task.unique_id || task.id)),
          h('td', { class: 'num' }, String(task.priority)),
          h('td', { class: 'num' }, String(task.queue_rank)),
          h('td', { class: 'num' }, `${task.response_count} / ${task.overlap}`),
          h('td', { class: 'num' }, task.confidence === null ? '–' : task.confidence.toFixed(2)),
        ),
      ),
    );
    $('queue-empty').hidden = page.items.length > 0;
    $('queue-card').dataset.state = 'ready';
  } catch (error) {
    say('queue-error', message(error));
  }
}

async function loadOrdering() {
  const { data: project } = await api('GET', projectPath);
  $('queue-ordering').value = project.quality.ordering || 'priority';
  cautionIfUncertain();
  return project;
}

// ranking untouched tasks by a model that learns from the project has cost accuracy (docs/quality.md, "Queue order")
function cautionIfUncertain() {
  $('queue-ordering-caution').hidden = $('queue-ordering').value !== 'model_uncertainty';
}

async function changeOrdering(event) {
  event.preventDefault();
  say('queue-error', '');
  say('queue-status', '');
  try {
    const { data: project } = await api('GET', projectPath); // the policy as stored now: only its ordering changes
    const ordering = $('queue-ordering').value;
    await api('PATCH', projectPath, { body: { quality: { ...project.quality, ordering } } });
    say('queue-status', `Ordering set to ${ordering}: the queue is being re-ranked.`);
  } catch (error) {
    say('queue-error', message(error));
  }
}

async function rerank() {
  say('queue-error', '');
  try {
    const { data: job } = await api('POST', `${projectPath}/queue/rerank`);
    say('queue-status', `Re-rank job ${job.id} is ${job.status}.`);
    await followJob(job.id, sayHowItWent, (error) => say('queue-error', message(error)));
    await showQueue();
  } catch (error) {
    say('queue-error', message(error));
  }
}

function sayHowItWent(job) {
  const result = job.result || {};
  if (job.status === 'succeeded') say('queue-status', `Re-ranked: ${result.changed ?? 0} of ${result.ranked ?? 0} tasks moved.`);
  else if (['failed', 'canceled'].includes(job.status)) say('queue-status', `Re-rank ${job.status}: ${job.error || ''}`);
}

if (config.may_manage_projects && $('queue-form')) {
  $('queue-form').addEventListener('submit', changeOrdering);
  $('queue-ordering').addEventListener('change', cautionIfUncertain);
  $('queue-rerank').addEventListener('click', rerank);
  loadOrdering().catch((error) => say('queue-error', message(error)));
}
showQueue();
