"""Pipeline step 1: find the title, slug it, pass everything to JavaScript."""

import re
import unicodedata

import polyload


def slug(title):
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")


def run(text):
    lines = [line for line in text.splitlines() if line.strip()]
    title = lines[0].lstrip("#").strip() if lines else ""
    return polyload.call("pipe_js.render", slug(title), text)
