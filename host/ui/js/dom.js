// Building the page from data: elements and text nodes only, never markup parsed from strings.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Sets `props` on `el`: `class`, `data-*`/`aria-*`/other attributes, `on*` listeners, properties. */
function assign(el, props, svg) {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') {
      if (svg) el.setAttribute('class', value);
      else el.className = value;
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (svg || key.includes('-') || !(key in el)) {
      el.setAttribute(key, value === true ? '' : String(value));
    } else {
      el[key] = value;
    }
  }
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** An HTML element: `h('a', {href: '/ui/runs', class: 'x'}, 'text', otherNode)`. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  assign(el, props, false);
  append(el, children);
  return el;
}

/** An SVG element, attributes only. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  assign(el, attrs, true);
  append(el, children);
  return el;
}

/** Replaces everything in `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Sets an element's text only when it changed, so that live updates do not churn the DOM. */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** Sets an attribute only when it changed. */
export function setAttr(el, name, value) {
  const text = String(value);
  if (el.getAttribute(name) !== text) el.setAttribute(name, text);
}

/** Runs `fn` at most once per animation frame, however often it is asked for. */
export function perFrame(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn();
    });
  };
}

/** `fn` called `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let timer = 0;
  const call = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}
