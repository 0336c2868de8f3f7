"""Named protocol variants: ``[variants.NAME]`` tables merged over their protocol file's base.

``atustc eval --protocol ltcc:atreid`` loads ``protocols/ltcc.toml`` and merges its
``[variants.atreid]`` table over the rest of the file before validation
(:func:`atustc.protocol.load_protocol`); see :func:`apply_variant` for the rule.
"""

from __future__ import annotations

from typing import Any

from atustc.errors import AtustcError

#: The sections a variant may change.
VARIANT_SECTIONS: tuple[str, ...] = ("protocol", "pools", "scenarios", "aggregates")
#: Keys whose value is a boolean: ``false`` sets them instead of removing them.
BOOLEAN_KEYS: frozenset[str] = frozenset({"same_camera_junk"})


def apply_variant(base: dict[str, Any], variants: dict[str, Any], variant: str, source: str) -> dict[str, Any]:
    """The base document with ``variants[variant]`` merged over it.

    Merge rule, section by section (``protocol``, ``pools``, ``scenarios``, ``aggregates``): an
    entry of the variant (a pool, scenario or aggregate) that the base lacks is added at the end;
    one the base has gets its keys replaced one by one (a ``junk`` list is replaced as a whole);
    ``false`` in place of an entry removes it, and ``false`` in place of a key removes the key
    (except a boolean key such as ``same_camera_junk``, which is set to false).
    In ``protocol`` the keys (``name``, ``description``, ``metric``) are replaced directly.

    Raises:
        AtustcError: an unknown variant (naming the file and the known variants) or a variant
            that is not a table of those sections.
    """
    if variant not in variants:
        known = ", ".join(variants) if variants else "the file defines none"
        raise AtustcError(f"{source}: unknown variant {variant!r} (variants: {known})")
    over = variants[variant]
    key = f"variants.{variant}"
    if not isinstance(over, dict):
        raise AtustcError(f"{source}: {key}: expected a table")
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for section, entries in over.items():
        if section not in VARIANT_SECTIONS:
            raise AtustcError(
                f"{source}: {key}.{section}: unknown section (expected one of {', '.join(VARIANT_SECTIONS)})"
            )
        if not isinstance(entries, dict):
            raise AtustcError(f"{source}: {key}.{section}: expected a table")
        target = merged.setdefault(section, {})
        for name, body in entries.items():
            _merge_entry(target, name, body, direct=section == "protocol")
    return merged


def _merge_entry(target: dict[str, Any], name: str, body: Any, *, direct: bool) -> None:
    if body is False:
        target.pop(name, None)
    elif direct or not isinstance(body, dict):
        target[name] = body
    else:
        current = target.get(name)
        entry = dict(current) if isinstance(current, dict) else {}
        for k, v in body.items():
            if v is False and k not in BOOLEAN_KEYS:
                entry.pop(k, None)
            else:
                entry[k] = v
        target[name] = entry
