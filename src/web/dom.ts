// What both pages (chat and admin) do with the document: find an element, make one, put
// their words into the HTML's marked elements, and name their language's locale.

export function $<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`missing #${id}`);
  return found as T;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Fill the elements marked `data-i18n` (text) and `data-i18n-placeholder` with `words`. */
export function applyWords(words: (key: string) => string): void {
  for (const node of document.querySelectorAll<HTMLElement>("[data-i18n]")) node.textContent = words(node.dataset.i18n!);
  for (const node of document.querySelectorAll<HTMLInputElement>("[data-i18n-placeholder]")) node.placeholder = words(node.dataset.i18nPlaceholder!);
}

/** The locale for dates and times in a page's language (undefined: the browser's own). */
export function locale(lang: "en" | "zh"): string | undefined {
  return lang === "zh" ? "zh-CN" : undefined;
}
