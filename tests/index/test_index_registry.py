"""The table of index kinds."""

import pytest

from app.index import DEFAULT_INDEX_KIND, INDEX_KINDS, VectorIndex, create_index


def test_every_kind_is_registered_under_its_own_name() -> None:
    for name, index_class in INDEX_KINDS.items():
        assert index_class.kind == name
        assert isinstance(index_class(4), VectorIndex)


def test_default_kind_builds_an_empty_index() -> None:
    index = create_index(DEFAULT_INDEX_KIND, 128)
    assert index.dim == 128 and len(index) == 0


def test_unknown_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="faiss-flat"):
        create_index("annoy", 128)


def test_registry_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        INDEX_KINDS["other"] = INDEX_KINDS[DEFAULT_INDEX_KIND]  # type: ignore[index]
