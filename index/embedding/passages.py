"""Splits articles into passages of whole sentences, keeping every sentence's offsets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llama_index.core.schema import (
    BaseNode,
    Document,
    MetadataMode,
    TextNode,
    TransformComponent,
)

from index.articles import Article, Passage
from index.embedding.vectors import SENTENCE_VECTORS, pack
from index.text import sentence_spans

# Metadata keys stored with every passage; only the title is embedded with the text.
EMBEDDED_KEYS = ("title",)


def split_passages(article: Article, max_sentences: int, max_chars: int) -> list[Passage]:
    """Groups consecutive sentences into passages of at most `max_sentences` sentences
    and about `max_chars` characters (a longer single sentence stays whole): no passage is
    longer than `max_chars` or `MAX_SENTENCE_CHARS`, whichever is more."""
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
                id=passage_id(article, number),
                article=article,
                number=number,
                start=start,
                end=end,
                text=article.text[start:end],
                sentences=tuple((s - start, e - start) for s, e in group),
            )
        )
    return passages


def passage_id(article: Article, number: int) -> str:
    """Names the article and its version: identical text under two sources is two
    articles with passages of their own."""
    return f"{article.id}|{article.content_hash[:16]}|{number}"


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


class PassageEncoder(TransformComponent):
    """Ingestion step: embeds each passage (after its title), and from the same encoder
    pass keeps a vector per sentence and per sentence-with-the-one-before, read in context.

    The sentence vectors go into the passage's metadata (`sentence_vectors`: the sentences'
    rows, then the windows' rows), so answering never encodes sentences at question time.
    """

    encoder: Any

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        texts, spans = [], []
        for node in nodes:
            embedded = node.get_content(metadata_mode=MetadataMode.EMBED)
            text = node.get_content()
            if not embedded.endswith(text):
                raise ValueError(f"passage {node.node_id}: the embedded text must end with it")
            shift = len(embedded) - len(text)
            own = [(s + shift, e + shift) for s, e in json.loads(node.metadata["sentences"])]
            windows = [(own[max(i - 1, 0)][0], end) for i, (_, end) in enumerate(own)]
            texts.append(embedded)
            spans.append(own + windows)
        vectors, span_vectors = self.encoder.encode_in_context(texts, spans)
        for node, vector, rows in zip(nodes, vectors, span_vectors, strict=True):
            node.embedding = vector.tolist()
            node.metadata[SENTENCE_VECTORS] = pack(rows)
            node.excluded_embed_metadata_keys.append(SENTENCE_VECTORS)
            node.excluded_llm_metadata_keys.append(SENTENCE_VECTORS)
        return nodes
