// Message text with its web addresses as links, built from DOM nodes only: the text goes
// in as text nodes (never parsed as HTML), links only for http(s) URLs, each opening in a
// new tab with rel="noopener noreferrer" (the opened page cannot reach back into this one
// or learn where it came from).

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
/** Punctuation that ends a sentence rather than the address. */
const TRAILING = /[.,;:!?)\]}'"»”’]+$/;

export function linkify(text: string): DocumentFragment {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const start = match.index;
    const url = match[0].replace(TRAILING, "");
    if (start > last) fragment.append(text.slice(last, start));
    fragment.append(link(url));
    last = start + url.length;
  }
  if (last < text.length) fragment.append(text.slice(last));
  return fragment;
}

function link(url: string): HTMLAnchorElement | string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return url;
  const a = document.createElement("a");
  a.href = parsed.href;
  a.textContent = url;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}
