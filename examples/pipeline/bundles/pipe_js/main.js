// Pipeline step 2: render the Markdown, count words, pass the document to Lua.
import { marked } from "marked";
import { call } from "polyload";

export function render(slug, text) {
  const html = marked.parse(text, { async: false });
  const words = text.split(/\s+/).filter((w) => /\w/.test(w)).length;
  return call("pipe_lua.package", { slug, html, words });
}
