// Page elements, for the demo page (demo.js) and the API page (docs.js).

/** A new `tag` element with optional text and class. */
export function element(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}
