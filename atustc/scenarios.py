"""The six AT-ReID scenarios (Li et al., "Anytime Person Re-Identification", the AT-USTC test).

A neutral home for the scenario names, shared by the data code (stats, splits), the method
contract (Uni-AT's six heads) and the leaderboard, so that none of them imports another layer.
What a scenario *is* (its pools and junk rules) lives only in the protocol files
(``protocols/atustc.toml``).
"""

from __future__ import annotations

#: The six scenarios, in the paper's order (also the order of Uni-AT's heads).
SCENARIOS: tuple[str, ...] = ("DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT")
