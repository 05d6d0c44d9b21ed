// The Images page's "Remove unused images" (owners and admins): asks in a modal <dialog>,
// then starts a media.prune job through the REST API and follows it on /jobs. The server checks the
// role and the number of hours again.
import { api } from './api.js';
import { message, show } from './job-kit.js';

const $ = (id) => document.getElementById(id);
const showError = (text) => show('prune-error', text);

async function prune(hours) {
  try {
    const { data: job } = await api('POST', '/media/pruning', { body: { older_than_hours: hours } });
    window.location.assign(`/jobs?kind=${encodeURIComponent(job.kind)}`);
  } catch (error) {
    showError(message(error));
  }
}

$('prune-media').addEventListener('click', () => {
  const hours = Number($('prune-hours').value);
  if ($('prune-hours').value === '' || !Number.isFinite(hours) || hours < 0) {
    showError('Give a number of hours, 0 or more.');
    return;
  }
  showError('');
  $('prune-dialog-text').textContent =
    `Every image uploaded more than ${hours} hours ago that no task of the organization names is removed, ` +
    'with its file, by a background job. This cannot be undone.';
  const dialog = $('prune-dialog');
  dialog.onclose = () => {
    if (dialog.returnValue === 'yes') prune(hours);
  };
  dialog.showModal();
});
