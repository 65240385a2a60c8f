// DOM helpers. The page builds every element with these and never parses
// markup from strings, so data cannot become markup (the page's
// Content-Security-Policy requires Trusted Types, which would refuse that
// anyway).

const SVG_NS = 'http://www.w3.org/2000/svg';

// h creates an HTML element. attrs: "class", "text" (textContent), "on<event>"
// (a listener), "dataset" (an object), booleans (set when true), anything
// else as an attribute; null and undefined are skipped. Children may be
// nodes, strings, numbers, arrays of them, or null.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s creates an SVG element, like h.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') {
      el.textContent = String(v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let idSeq = 0;
// uid returns a new element id with the given prefix.
export function uid(prefix) {
  idSeq += 1;
  return `${prefix}-${idSeq}`;
}
