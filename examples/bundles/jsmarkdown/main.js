// jsmarkdown: Markdown to HTML, with marked doing the work.
import { marked } from "marked";

/** render(str) -> str: GitHub-flavoured Markdown to HTML. */
export function render(text) {
  return marked.parse(text, { async: false, gfm: true });
}
