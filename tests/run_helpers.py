"""Helpers for tests that write run folders by hand."""

from __future__ import annotations


def provenance_record(protocol: str, checkpoint: str = "last") -> dict:
    """A provenance record the leaderboard accepts for an eval file of ``protocol`` scored with ``checkpoint``."""
    from atustc.protocol import load_protocol
    from atustc.provenance import protocol_hash

    return {
        "checkpoint": checkpoint,
        "checkpoint_sha256": "0" * 64,
        "features_sha256": "1" * 64,
        "protocol": protocol,
        "protocol_sha256": protocol_hash(load_protocol(protocol)),
    }
