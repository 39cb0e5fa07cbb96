"""polyload bundle support, installed once per process by polyload-python.

Isolation: each loaded version of a bundle gets a unique package name
(``_polyload_<id>_<n>``) whose ``__path__`` is the bundle's directory. Every
module of the bundle runs with its own ``__builtins__`` whose ``__import__``
maps a top-level name that is one of the bundle's own files (``util`` for
``util.py`` or ``util/__init__.py``) to ``<package>.util``, and ``polyload``
to the bundle's own ``polyload`` module. Everything else (the standard
library, pip packages) imports as usual. So two bundles can each have a
``util`` module, and a reload gets fresh module objects.
"""

import builtins
import importlib.machinery
import os
import sys
import types

_orig_import = builtins.__import__
_bundles = {}


class PolyloadError(Exception):
    """A call through polyload.call failed (the message says why)."""


class _BundleSourceLoader(importlib.machinery.SourceFileLoader):
    """Loads a bundle's own module with the bundle's builtins; writes no
    bytecode cache next to the sources."""

    def __init__(self, fullname, path, bundle):
        super().__init__(fullname, path)
        self._bundle = bundle

    def exec_module(self, module):
        module.__builtins__ = self._bundle.builtins
        super().exec_module(module)

    def set_data(self, *args, **kwargs):
        pass


class _Finder:
    """Finds ``<package>.name`` modules of loaded bundles."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        bundle = _bundles.get(fullname.partition(".")[0])
        if bundle is None or "." not in fullname:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _BundleSourceLoader(fullname, spec.origin, bundle)
        return spec

    @staticmethod
    def invalidate_caches():
        pass


class Bundle:
    def __init__(self, prefix, root, polyload, site=None):
        self.prefix = prefix
        self.root = root
        self.site = site
        self.polyload = polyload
        self._own = {}
        self.builtins = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import
        # The bundle's own files first, then its pip packages: both import
        # as <package>.name, so another bundle's copies never mix in.
        search = [root] + ([site] if site else [])
        package = types.ModuleType(prefix)
        package.__path__ = search
        package.__package__ = prefix
        package.__spec__ = importlib.machinery.ModuleSpec(prefix, None, is_package=True)
        package.__spec__.submodule_search_locations = search
        if site:
            # Extension modules among the packages are found here (shared
            # by name: CPython loads an extension once per process).
            add_site(site)
        sys.modules[prefix] = package
        _bundles[prefix] = self

    def _owns(self, top):
        """Whether ``top`` is one of the bundle's files or pure-Python
        packages (a module or package of Python source)."""
        own = self._own.get(top)
        if own is None:
            own = any(
                os.path.isfile(os.path.join(d, top + ".py"))
                or os.path.isfile(os.path.join(d, top, "__init__.py"))
                for d in ([self.root] + ([self.site] if self.site else []))
            )
            self._own[top] = own
        return own

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            top = name.partition(".")[0]
            if name == "polyload":
                return self.polyload
            if self._owns(top):
                module = _orig_import(self.prefix + "." + name, globals, locals, fromlist, 0)
                return module if fromlist else sys.modules[self.prefix + "." + top]
        return _orig_import(name, globals, locals, fromlist, level)

    def run_entry(self, source, filename, stem):
        """Runs the entry script as ``<package>.<stem>`` and returns it."""
        name = self.prefix + "." + stem
        module = types.ModuleType(name)
        module.__file__ = filename
        module.__package__ = self.prefix
        module.__builtins__ = self.builtins
        sys.modules[name] = module
        try:
            exec(compile(source, filename, "exec"), module.__dict__)
        except BaseException:
            self.drop()
            raise
        return module

    def drop(self):
        """Forgets this version: its modules leave sys.modules."""
        _bundles.pop(self.prefix, None)
        dotted = self.prefix + "."
        for key in [k for k in sys.modules if k == self.prefix or k.startswith(dotted)]:
            del sys.modules[key]


def make_polyload(call):
    """The ``polyload`` module a bundle sees; ``call`` is the host's."""
    module = types.ModuleType("polyload")
    module.__doc__ = "Calls definitions of any bundle: call(name, *args), get(name)."
    module.call = call
    module.Error = PolyloadError

    def get(name):
        def proxy(*args):
            return call(name, *args)

        proxy.__name__ = proxy.__qualname__ = name
        return proxy

    module.get = get
    return module


def add_site(path):
    if path not in sys.path:
        sys.path.insert(0, path)
        importlib.invalidate_caches()


def interpreter():
    """The python executable matching this interpreter (for pip)."""
    exe = os.path.join(sys.base_prefix, "bin", "python%d.%d" % sys.version_info[:2])
    return exe if os.path.isfile(exe) else "python3"


sys.meta_path.insert(0, _Finder)
