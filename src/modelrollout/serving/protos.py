"""TensorFlow Serving's protocol classes without importing TensorFlow.

The ``tensorflow-serving-api`` package's generated modules import
``tensorflow.core.framework.*_pb2``, which ship inside the ``tensorflow`` wheel.
Importing them the ordinary way executes ``tensorflow/__init__.py`` and loads
all of TensorFlow (seconds, hundreds of MB). We register the ``tensorflow``
package (and its intermediate packages) as empty modules whose ``__path__``
points at the installed package directory, so only the generated protobuf
modules themselves are executed. Nothing is copied from either project.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

_SHELL_PACKAGES = (
    "tensorflow",
    "tensorflow.core",
    "tensorflow.core.framework",
    "tensorflow.core.example",
    "tensorflow.core.protobuf",
)


def _register_shell_packages() -> None:
    """Make ``tensorflow.core.*`` importable without running TensorFlow's ``__init__``."""
    if "tensorflow" in sys.modules:
        return  # TensorFlow (or our shell) is already there: nothing to do.
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the 'tensorflow' package (which carries TF Serving's protobuf modules) is not "
            "installed: pip install 'modelrollout[serving]'"
        )
    root = next(iter(spec.submodule_search_locations))
    for name in _SHELL_PACKAGES:
        module = types.ModuleType(name)
        module.__path__ = [root + name[len("tensorflow") :].replace(".", "/")]
        module.__package__ = name
        sys.modules[name] = module
    sys.modules["tensorflow"].__dict__["__modelrollout_shell__"] = True


def load(module: str) -> Any:
    """Import one ``tensorflow_serving.apis`` or ``tensorflow.core`` module, TensorFlow-free.

    Example: ``predict_pb2 = protos.load("tensorflow_serving.apis.predict_pb2")``.
    """
    _register_shell_packages()
    return importlib.import_module(module)
