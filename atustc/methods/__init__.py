"""Method contract and registry. See :mod:`atustc.methods.contract`."""

from atustc.methods._registry import (
    get_method,
    is_registered,
    list_methods,
    register_method,
    temporary_method,
    unregister_method,
)
from atustc.methods.contract import (
    SCENARIOS,
    SIDE_FIELDS,
    Batch,
    LabelSpace,
    MethodOption,
    MethodSpec,
    OptimGroup,
    Recipe,
    ReIDModel,
)

__all__ = [
    "SCENARIOS",
    "SIDE_FIELDS",
    "Batch",
    "LabelSpace",
    "MethodOption",
    "MethodSpec",
    "OptimGroup",
    "Recipe",
    "ReIDModel",
    "get_method",
    "is_registered",
    "list_methods",
    "register_method",
    "temporary_method",
    "unregister_method",
]
