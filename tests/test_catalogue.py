"""The snapshot's arrays of ids and origins (index/store/catalogue.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from index.store.catalogue import Catalogue, PassageIds
from index.store.passage_info import PassageInfo

IDS = ["harbour.txt#0", "harbour.txt#1", "Zürich Straße.md#0", "", "https://a.example/x?y=1#3"]


def test_ids_give_each_position_its_id_and_each_id_its_position() -> None:
    ids = PassageIds.of(IDS)
    assert len(ids) == len(IDS) and list(ids) == IDS and ids[-1] == IDS[-1]
    assert ids[1:3] == IDS[1:3]
    assert [ids.position(pid) for pid in IDS] == list(range(len(IDS)))
    assert ids.position("harbour.txt#2") is None and "harbour.txt#2" not in ids
    assert "Zürich Straße.md#0" in ids
    with pytest.raises(IndexError):
        ids[len(IDS)]


class SameHash(PassageIds):
    @staticmethod
    def key(pid: str) -> int:
        return 7


def test_ids_of_the_same_hash_are_told_apart_by_their_text() -> None:
    colliding = SameHash.of(IDS)
    assert [colliding.position(pid) for pid in IDS] == list(range(len(IDS)))
    assert colliding.position("missing") is None
    assert colliding.taken(np.array([1, 3])).position(IDS[3]) == 1


def test_ids_chained_and_taken_keep_their_order() -> None:
    first, second = PassageIds.of(IDS[:2]), PassageIds.of(IDS[2:])
    chained = PassageIds.chained([first, PassageIds.of([]), second])
    assert list(chained) == IDS and chained.position(IDS[4]) == 4
    taken = chained.taken(np.array([0, 2, 4]))
    assert list(taken) == [IDS[0], IDS[2], IDS[4]]
    assert taken.position(IDS[4]) == 2 and taken.position(IDS[1]) is None
    assert list(PassageIds.chained([])) == []


def article(name: str, published: str = "") -> PassageInfo:
    return PassageInfo(name, name.title(), f"/srv/{name}", "", published, "", 0, 0, 0, (), "")


def test_a_catalogue_makes_each_passages_info_from_its_article_and_arrays() -> None:
    articles = [None, article("harbour", "2024-05-01"), None, article("orchard")]
    catalogue = Catalogue(
        articles,
        np.array([1, 1, 3], np.int32),
        np.array([0, 1, 0], np.int32),
        np.array([0, 90, 0], np.int32),
        np.array([90, 170, 40], np.int32),
    )
    assert len(catalogue) == 3
    assert catalogue[1] == dataclasses.replace(articles[1], number=1, start=90, end=170)
    assert [p.article_id for p in catalogue] == ["harbour", "harbour", "orchard"]
    assert catalogue.in_articles() == [articles[1], articles[3]]
    days = catalogue.column(lambda p: len(p.published), np.int32)
    assert days.tolist() == [10, 10, 0]
    kept = catalogue.taken(np.array([1, 2]))
    assert [(p.article_id, p.number) for p in kept] == [("harbour", 1), ("orchard", 0)]
    more = Catalogue(articles, *(np.array([v], np.int32) for v in (3, 1, 40, 80)))
    chained = Catalogue.chained(articles, [kept, Catalogue.empty(articles), more])
    assert [(p.article_id, p.number, p.start) for p in chained] == [
        ("harbour", 1, 90),
        ("orchard", 0, 0),
        ("orchard", 1, 40),
    ]
