"""A clear error when a module of the user's shadows one of our generic top-level packages.

Grad2Reward ships three top-level packages, ``tasks``, ``g2r_env`` and ``agents``. A ``tasks.py``
or ``agents/`` folder in the working directory (or any other module of that name earlier on
``sys.path``) would otherwise be imported in their place and fail later with an unrelated error
such as "cannot import name 'Task'".
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def require_own(name: str) -> None:
    """Raise ImportError, naming the path and what to do, when ``name`` is not our package."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None) if module is not None else importlib.util.find_spec(name)
    expected = ROOT / name
    if spec is None:
        raise ImportError(f"Grad2Reward's package {name!r} is missing (expected at {expected}); reinstall it")
    locations = [Path(p).resolve() for p in (spec.submodule_search_locations or [])]
    origin = Path(spec.origin).resolve() if spec.origin else None
    if expected.resolve() in locations or (origin is not None and origin.parent == expected.resolve()):
        return
    found = origin or (locations[0] if locations else "?")
    advice = (
        " The OpenAI Agents SDK also installs a top-level 'agents' package: install Grad2Reward and it "
        "in separate environments."
        if name == "agents"
        else ""
    )
    raise ImportError(
        f"the module {name!r} is {found}, not Grad2Reward's package {expected}: a file or folder "
        f"named {name!r} earlier on sys.path (often {name}.py or {name}/ in the working directory) "
        f"shadows it; rename yours or run from another folder.{advice}"
    )
