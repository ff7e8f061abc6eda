"""Splits articles into passages of whole sentences, keeping every sentence's offsets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llama_index.core.schema import BaseNode, Document, TextNode, TransformComponent

from index.articles import Article, Passage
from index.text import sentence_spans

# Metadata keys stored with every passage; only the title is embedded with the text.
EMBEDDED_KEYS = ("title",)


def split_passages(article: Article, max_sentences: int, max_chars: int) -> list[Passage]:
    """Groups consecutive sentences into passages of at most `max_sentences` sentences
    and about `max_chars` characters (a longer single sentence stays whole)."""
    groups: list[list[tuple[int, int]]] = []
    for span in sentence_spans(article.text):
        group = groups[-1] if groups else None
        if group is None or len(group) >= max_sentences or span[1] - group[0][0] > max_chars:
            groups.append([span])
        else:
            group.append(span)
    passages = []
    for number, group in enumerate(groups):
        start, end = group[0][0], group[-1][1]
        passages.append(
            Passage(
                id=f"{article.content_hash[:20]}-{number}",
                article=article,
                number=number,
                start=start,
                end=end,
                text=article.text[start:end],
                sentences=tuple((s - start, e - start) for s, e in group),
            )
        )
    return passages


def article_document(article: Article) -> Document:
    """The llama-index Document an article enters the ingestion pipeline as."""
    return Document(text=article.text, id_=article.id, metadata=article_metadata(article))


def article_metadata(article: Article) -> dict[str, Any]:
    # Chroma metadata values cannot be None.
    return {
        "article_id": article.id,
        "title": article.title,
        "source": article.source,
        "url": article.url or "",
        "published": article.published or "",
        "content_hash": article.content_hash,
    }


def article_from_metadata(metadata: dict[str, Any], text: str = "") -> Article:
    return Article(
        id=metadata["article_id"],
        title=metadata["title"],
        text=text,
        source=metadata["source"],
        url=metadata["url"] or None,
        published=metadata["published"] or None,
    )


class PassageSplitter(TransformComponent):
    """Ingestion step: article Documents in, one TextNode per passage out."""

    max_sentences: int = 5
    max_chars: int = 1000

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        out: list[BaseNode] = []
        for node in nodes:
            article = article_from_metadata(node.metadata, node.get_content())
            for passage in split_passages(article, self.max_sentences, self.max_chars):
                out.append(passage_node(passage))
        return out


def passage_node(passage: Passage) -> TextNode:
    metadata = article_metadata(passage.article) | {
        "number": passage.number,
        "start": passage.start,
        "end": passage.end,
        "sentences": json.dumps(passage.sentences),
    }
    return TextNode(
        id_=passage.id,
        text=passage.text,
        metadata=metadata,
        start_char_idx=passage.start,
        end_char_idx=passage.end,
        excluded_embed_metadata_keys=[k for k in metadata if k not in EMBEDDED_KEYS],
        excluded_llm_metadata_keys=[k for k in metadata if k not in EMBEDDED_KEYS],
    )
