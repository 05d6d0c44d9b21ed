// Markdown from task data (model responses, chat turns), shown safely:
// 1. marked turns the Markdown into HTML, with any raw HTML in the text escaped, so it shows as text;
// 2. DOMPurify sanitises the result (defence in depth: no script, event handler, javascript: link,
//    frame, form or style survives) and returns DOM nodes, never an HTML string for the page;
// 3. highlight.js colours code blocks, from their text.
// All three are vendored, pinned libraries (scripts/vendor.sh); nothing runs inline (strict CSP).
import { Marked } from '/static/vendor/marked/lib/marked.esm.js';
import createDOMPurify from '/static/vendor/dompurify/dist/purify.es.mjs';
import hljs from '/static/vendor/highlight.js/es/highlight.min.js';

const escapeHtml = (text) =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const markdown = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    html: (token) => escapeHtml(token.text), // raw HTML in a response is text, never markup
    // An image in a model's text would be fetched from wherever it points as soon as it is shown:
    // a tracking pixel telling its owner who reads the data and when. It becomes a link instead,
    // loaded only if the worker chooses to open it.
    image: (token) => `<a href="${escapeHtml(token.href)}">[image: ${escapeHtml(token.text || token.href)}]</a>`,
  },
});

// An instance of our own, so its settings and hooks touch nothing else on the page.
const purify = createDOMPurify(window);
const FORBID_TAGS = ['img', 'picture', 'video', 'audio', 'source', 'style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed', 'svg', 'math'];
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

hljs.configure({ ignoreUnescapedHTML: true, throwUnescapedHTML: false });

/** A `div.markdown` with `text` rendered as sanitised Markdown and highlighted code. */
export function renderMarkdown(text) {
  const container = document.createElement('div');
  container.className = 'markdown prose';
  const html = markdown.parse(String(text ?? ''));
  container.append(purify.sanitize(html, { RETURN_DOM_FRAGMENT: true, FORBID_TAGS, FORBID_ATTR: ['style'] }));
  for (const block of container.querySelectorAll('pre code')) {
    const language = [...block.classList].find((c) => c.startsWith('language-'));
    if (language && !hljs.getLanguage(language.slice(9))) block.classList.remove(language); // no console noise
    hljs.highlightElement(block);
  }
  return container;
}
