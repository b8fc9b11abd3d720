"""Load only the provider SDK modules a program touches, not a whole generated package.

``pulumi_azure_native`` makes each service (``network``, ``compute``, ...) a lazy module, but the
first attribute read runs the service's ``__init__``, which star-imports every one of its resource
and function modules: ``network.PrivateEndpoint`` loads 290 modules to reach one class. Importing
the submodule directly does not help: each resource module does ``from . import outputs``, which
touches the package and runs the same ``__init__``. ``pulumi_kubernetes`` does the same one level
down, per API version (``core.v1`` loads its 48 resource modules; ``helm.v3`` loads the ``Chart``
helper and, through ``pulumi_kubernetes.yaml``, ``requests``, to reach ``Release``).

``install()`` turns each such package that has not loaded yet into a :class:`ServicePackage`: a
module with the same spec, ``__path__`` and identity whose missing attributes are looked up in the
one submodule that defines them, checked against that module's ``__all__``: ``PrivateEndpoint`` in
``private_endpoint.py``, ``SubnetArgs`` in ``_inputs.py``, ``get_foo_output`` in ``get_foo.py``,
Kubernetes' ``Service`` and ``ServiceInitArgs`` in ``Service.py``. A name it cannot place runs the
real ``__init__``, so every name the package exports still resolves, to the same object
(``tests/plan/test_lean_imports.py``). ``components/__init__.py`` calls it, so ``__main__.py`` under
``pulumi up`` and the offline plan load the same classes.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any, Final, cast

PROVIDERS: Final = {"pulumi_azure_native": 1, "pulumi_kubernetes": 2}
"""Each provider SDK and how deep its lazy packages sit: azure-native's services, Kubernetes' group/version."""
_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SHARED: Final = ("_inputs", "_enums", "outputs")


def module_stem(name: str) -> str:
    """The generated module a class or function lives in: ``PublicIPAddress`` -> ``public_ip_address``."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


class ServicePackage(types.ModuleType):
    """A service package whose ``__init__`` has not run; attributes load from their own submodule."""

    def __getattr__(self, name: str) -> Any:
        if name == "__all__":  # a star import wants every name: only the real __init__ binds them all
            return self._load_everything(name)
        if name.startswith("__"):
            raise AttributeError(name)
        value = self._place(name)  # two threads placing one name get the same object: no lock needed
        setattr(self, name, value)
        return value

    def _place(self, name: str) -> Any:
        where = Path(next(iter(self.__path__)))
        owner = name.removesuffix("InitArgs").removesuffix("Args").removesuffix("_output")  # FooArgs, get_foo_output
        if owner.startswith("Get") and owner.endswith("Result"):  # GetFooResult lives with get_foo
            owner = owner.removesuffix("Result")
        for stem in dict.fromkeys((name, module_stem(name), owner, module_stem(owner), *_SHARED)):
            if not ((where / f"{stem}.py").is_file() or (where / stem / "__init__.py").is_file()):
                continue
            module = importlib.import_module(f"{self.__name__}.{stem}")
            if name in getattr(module, "__all__", ()):
                return getattr(module, name)
            if stem == name:  # a submodule itself: outputs, an API version's package
                return module
        return self._load_everything(name)

    def __dir__(self) -> list[str]:
        """Every name, as the real package lists them (so the real ``__init__`` runs)."""
        module = self._run_init()
        return sorted(vars(module))

    def _load_everything(self, name: str) -> Any:
        """The real ``__init__``, for a name no single submodule explains."""
        return getattr(self._run_init(), name)

    def _run_init(self) -> types.ModuleType:
        module = cast("types.ModuleType", self)
        module.__class__ = types.ModuleType  # plain module again: its own attributes from here on
        spec = module.__spec__
        if spec is not None and spec.loader is not None:  # module_from_spec always sets both
            spec.loader.exec_module(module)
        return module


def _lean(module: types.ModuleType) -> None:
    """Make a not-yet-loaded lazy package a :class:`ServicePackage` (same object)."""
    if type(module).__name__ == "_LazyModule" and module.__spec__ is not None:
        module.__class__ = ServicePackage


def install() -> None:
    """Make every lazy package of the provider SDKs lean, whether or not a provider is imported yet.

    Each package's module is created here (same spec, not executed) so the provider's own
    ``lazy_import`` finds and keeps it; no provider code runs until a program reads an attribute. One
    the provider created already is made lean in place, unless it has loaded.
    """
    for provider, depth in PROVIDERS.items():
        spec = importlib.util.find_spec(provider)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            for init in sorted(Path(location).glob("/".join(["*"] * depth) + "/__init__.py")):
                package = init.parent
                fullname = ".".join((provider, *package.relative_to(location).parts))
                existing = sys.modules.get(fullname)
                if existing is not None:
                    _lean(existing)
                    continue
                sub = importlib.machinery.PathFinder.find_spec(fullname, [str(package.parent)])
                if sub is None:
                    continue
                module = importlib.util.module_from_spec(sub)
                module.__class__ = ServicePackage
                sys.modules[fullname] = module
