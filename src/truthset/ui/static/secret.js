// A copy button for a one-time secret (the new member's password, a new API key), shown once on
// the members and keys pages. Progressive: without scripts the secret is still there to select.

for (const button of document.querySelectorAll('button[data-copy]')) {
  const input = document.getElementById(button.dataset.copy);
  const state = button.parentElement.querySelector('.copy-state');
  if (!input || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      if (state) state.textContent = 'Copied.';
    } catch {
      input.select(); // no clipboard permission: select it for Ctrl+C
      if (state) state.textContent = 'Press Ctrl+C to copy.';
    }
  });
}
