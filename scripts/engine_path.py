"""Let a benchmark import the engine (and the control layer) without Home Assistant.

`import engine_path` from a script in this folder puts the repo on `sys.path` and
registers `custom_components.smart_charge` as a bare package, so its `__init__` (which
imports Home Assistant) does not run; the engine and the control layer need none of it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
import sys
import types

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "custom_components.smart_charge" not in sys.modules:
    package = types.ModuleType("custom_components.smart_charge")
    package.__path__ = [str(ROOT / "custom_components" / "smart_charge")]
    if importlib.util.find_spec("custom_components") is not None:
        sys.modules["custom_components.smart_charge"] = package
