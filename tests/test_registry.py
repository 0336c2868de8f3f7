"""The method registry: duplicates raise, unknown names suggest, temporary registration cleans up."""

import pytest

from atustc.errors import AtustcError
from atustc.methods import MethodSpec, Recipe, get_method, list_methods, register_method, temporary_method


def _spec(name: str) -> MethodSpec:
    return MethodSpec(name=name, family="Tr-ReID", summary="test", build=lambda *a: None, recipe=lambda p: Recipe())


def test_unknown_method_suggests_close_names():
    with pytest.raises(AtustcError, match=r"unknown method 'uniatt'; did you mean uniat"):
        get_method("uniatt")


def test_duplicate_name_raises_and_temporary_method_is_removed():
    with temporary_method(lambda: _spec("zz-temp")) as spec:
        assert get_method("zz-temp") is spec
        with pytest.raises(ValueError, match="'zz-temp' is already registered"):
            register_method(lambda: _spec("zz-temp"))
    with pytest.raises(AtustcError, match="unknown method 'zz-temp'"):
        get_method("zz-temp")


def test_builtin_methods_are_registered_with_families():
    names = {m.name: m.family for m in list_methods()}
    assert names["uniat"] == "AT-ReID"
    assert names["transreid"] == "Tr-ReID"
