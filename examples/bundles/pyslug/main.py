"""pyslug: text to URL slug, with python-slugify doing the work."""

from slugify import slugify as _slugify


def slugify(text):
    """'Héllo, Wörld!' -> 'hello-world'."""
    return _slugify(text)
