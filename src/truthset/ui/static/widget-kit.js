// Small DOM helpers for question widgets. Text always goes in as text, never as HTML.

export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The key that picks option `index`: its own hotkey, else 1-9 for the first nine. */
export function optionKey(option, index) {
  if (option.hotkey) return option.hotkey;
  return index < 9 ? String(index + 1) : null;
}

export function keyMatches(event, key) {
  return key !== null && key !== undefined && event.key.toLowerCase() === String(key).toLowerCase();
}
