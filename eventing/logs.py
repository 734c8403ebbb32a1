"""Deprecated alias of `eventing.ops.logs`, the path settings and code used before 0.1.0.

Removed in 0.3.0; every name read here warns with RemovedInEventing03Warning.
"""

from __future__ import annotations

import eventing.ops.logs as _moved_to
from eventing.deprecation import forward

__getattr__ = forward(__name__, _moved_to)
