/**
 * The slice of the browser's DOM the dashboard uses, typed here rather than
 * through TypeScript's `dom` lib: that lib would declare `document` and a
 * second `setTimeout` for the whole (Node) program. Pages build elements
 * with `h()`, which sets text as text — API data never becomes markup.
 */

/** A DOM node as the pages use it. */
export interface DomNode {
  textContent: string | null;
}

/** A DOM event. */
export interface DomEvent {
  preventDefault(): void;
  readonly key?: string;
}

/** A DOM element as the pages use it. */
export interface El extends DomNode {
  className: string;
  id: string;
  title: string;
  scrollTop: number;
  readonly scrollHeight: number;
  readonly clientHeight: number;
  appendChild<T extends DomNode>(child: T): T;
  replaceChildren(...nodes: (DomNode | string)[]): void;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  getAttribute(name: string): string | null;
  addEventListener(type: string, fn: (ev: DomEvent) => void): void;
  remove(): void;
  querySelector(selector: string): El | null;
}

/** A form control. */
export interface InputEl extends El {
  value: string;
  checked: boolean;
  disabled: boolean;
  focus(): void;
}

interface DocumentLike {
  createElement(tag: string): El;
  createElementNS(ns: string, tag: string): El;
  createTextNode(text: string): DomNode;
  getElementById(id: string): El | null;
  title: string;
}

interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

interface BrowserGlobals {
  readonly document: DocumentLike;
  readonly sessionStorage: StorageLike;
  readonly location: { hash: string; readonly origin: string };
  addEventListener(type: string, fn: () => void): void;
  confirm(message: string): boolean;
  readonly crypto?: { randomUUID?: () => string };
}

/** The browser's globals, reached once here. */
export const browser = globalThis as unknown as BrowserGlobals;

type Child = El | DomNode | string | number | null | undefined | false;
type Attrs = Readonly<Record<string, string | number | boolean | undefined | ((ev: DomEvent) => void)>>;

function fill(el: El, attrs: Attrs | undefined, children: readonly Child[]): El {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? browser.document.createTextNode(String(c)) : c);
  }
  return el;
}

/** An HTML element: `h('td', { class: 'num' }, '42')`. Text children are text nodes, never markup. */
export function h(tag: string, attrs?: Attrs, ...children: Child[]): El {
  return fill(browser.document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag: string, attrs?: Attrs, ...children: Child[]): El {
  return fill(browser.document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

/** A form control made by `h` (the same element, typed as a control). */
export function input(attrs?: Attrs): InputEl {
  return h('input', attrs) as InputEl;
}

/** A `<select>` with options [value, label]. */
export function select(attrs: Attrs, options: readonly (readonly [string, string])[], value: string): InputEl {
  const el = h('select', attrs, ...options.map(([v, label]) => h('option', { value: v }, label))) as InputEl;
  el.value = value;
  return el;
}
