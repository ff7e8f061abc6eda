"""Block Kit rendering of answers: quotes, links to the quoted sentence, Slack's limits."""

from __future__ import annotations

import json
from urllib.parse import unquote

from bot.answering.answers import Answer, Citation, PassageHit
from bot.slack import messages
from bot.slack.blocks import (
    MAX_BLOCKS,
    MAX_BUTTON_VALUE,
    MAX_MESSAGE_TEXT,
    MAX_SECTION_TEXT,
    answer_blocks,
    answer_text,
    escape,
    fit,
    text_fragment_url,
)

SENTENCE = (
    "Syrian officials assure that this is a lie to justify the aggressive policy of the "
    "United States."
)


def citation(text: str = SENTENCE, url: str | None = "https://example.com/syria", **kw) -> Citation:
    fields = dict(
        text=text,
        title="Syria denies burning prisoners' bodies",
        source="/data/articles/syria.txt",
        url=url,
        published="2017-05-16",
        score=0.9,
        article_id="/data/articles/syria.txt",
        start=0,
        end=len(text),
    )
    return Citation(**(fields | kw))


def answered(*citations: Citation) -> Answer:
    return Answer("who denied the crematorium claim", answered=True, citations=list(citations))


def texts(blocks: list[dict]) -> list[str]:
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return found


def buttons(blocks: list[dict]) -> dict[str, str]:
    return {
        e["action_id"]: e["value"]
        for block in blocks
        if block["type"] == "actions"
        for e in block["elements"]
    }


# --- text fragments ---


def test_a_short_sentence_is_the_whole_text_fragment():
    url = text_fragment_url("https://example.com/a", "The war ended in 1973.")
    assert url == "https://example.com/a#:~:text=The%20war%20ended%20in%201973."


def test_a_long_sentence_is_highlighted_by_its_first_and_last_words():
    url = text_fragment_url("https://example.com/a", SENTENCE)
    start, end = url.split("#:~:text=")[1].split(",")
    assert unquote(start) == "Syrian officials assure that this"
    assert unquote(end) == "policy of the United States."


def test_text_fragment_syntax_characters_are_encoded():
    url = text_fragment_url("https://example.com/a", "Prices rose - sharply, & fast")
    directive = url.split("#:~:text=")[1]
    assert "-" not in directive and "," not in directive and "&" not in directive
    assert unquote(directive) == "Prices rose - sharply, & fast"


def test_an_existing_fragment_is_kept():
    assert text_fragment_url("https://example.com/a#top", "Hi there.").startswith(
        "https://example.com/a#top:~:text=Hi"
    )


# --- the answer message ---


def test_each_citation_is_a_quote_linked_to_its_sentence_with_its_date():
    blocks = answer_blocks(answered(citation()), "a1")
    quote = texts(blocks)[0]
    assert quote.startswith("> " + SENTENCE + "\n— <https://example.com/syria#:~:text=Syrian")
    assert "|Syria denies burning prisoners' bodies>, 2017-05-16" in quote
    footer = [b for b in blocks if b["type"] == "context"][0]["elements"][0]["text"]
    assert footer.startswith(f"*{messages.SOURCES}:* <https://example.com/syria|Syria denies")
    assert buttons(blocks) == {"feedback_up": "a1", "feedback_down": "a1"}


def test_a_source_without_url_is_named_by_its_file():
    blocks = answer_blocks(answered(citation(url=None)), "a1")
    assert texts(blocks)[0].endswith(
        "*Syria denies burning prisoners' bodies* (syria.txt), 2017-05-16"
    )


def test_an_unanswered_question_says_so_and_shows_the_closest_passages():
    passage = PassageHit("Oil prices quadrupled.", "Oil crisis", "/a/oil.md", None, None, 0.3)
    blocks = answer_blocks(Answer("what?", answered=False, passages=[passage]), "a1")
    assert texts(blocks)[0] == messages.NO_ANSWER
    assert texts(blocks)[1].startswith("> Oil prices quadrupled.\n— *Oil crisis* (oil.md)")
    assert messages.NO_ANSWER in answer_text(Answer("what?", answered=False, passages=[passage]))
    nothing = answer_blocks(Answer("what?", answered=False), "a1")
    assert texts(nothing)[0] == messages.NOTHING_FOUND


def test_the_private_answer_has_a_share_button_and_the_shared_one_names_the_asker():
    assert "share_answer" in buttons(answer_blocks(answered(citation()), "a1", share=True))
    shared = answer_blocks(answered(citation()), "a1", asked_by="U0ALICE")
    assert texts(shared)[0] == "<@U0ALICE> asked: who denied the crematorium claim"
    assert "share_answer" not in buttons(shared)


def test_mrkdwn_in_article_text_is_escaped():
    blocks = answer_blocks(answered(citation(text="A <b> & <!channel> trick.", title="T<1>")), "a")
    assert texts(blocks)[0].startswith("> A &lt;b&gt; &amp; &lt;!channel&gt; trick.\n")
    assert "|T&lt;1&gt;>" in texts(blocks)[0]


# --- Slack's limits ---


def test_many_citations_stay_within_fifty_blocks():
    many = answered(*[citation(text=f"Sentence number {n}.") for n in range(80)])
    blocks = answer_blocks(many, "a1", share=True, asked_by="U1")
    assert len(blocks) == MAX_BLOCKS
    assert blocks[-1]["type"] == "actions"
    assert any("more, left out" in t for t in texts(blocks))


def test_huge_texts_are_cut_within_the_limits():
    huge = "word & " * 5000
    answer = Answer(
        huge,
        answered=True,
        citations=[citation(text=huge, title=huge, url="https://example.com/" + "p" * 5000)],
    )
    blocks = answer_blocks(answer, "x" * 5000, share=True, asked_by="U1")
    assert all(len(t) <= MAX_SECTION_TEXT for t in texts(blocks))
    assert all(len(v) <= MAX_BUTTON_VALUE for v in buttons(blocks).values())
    assert len(answer_text(answer)) <= MAX_MESSAGE_TEXT
    assert len(json.dumps(blocks)) < 50_000


def test_fit_never_cuts_an_escape_in_half():
    for limit in range(1, 30):
        cut = fit("a&b<c>d" * 5, limit)
        assert len(cut) <= limit
        assert cut.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0
    assert fit("short", 10) == "short"
    assert escape("<&>") == "&lt;&amp;&gt;"


def test_a_sentence_in_several_outlets_names_them_under_the_quote() -> None:
    from bot.answering.answers import Outlet

    outlets = tuple(
        Outlet(
            f"Wire copy {n} <!channel>", f"https://o{n}.example/a", f"https://o{n}.example/a", None
        )
        for n in range(6)
    )
    blocks = answer_blocks(answered(citation(also_in=outlets)), "a1")
    quote = next(t for t in texts(blocks) if SENTENCE[:20] in t)
    assert "also in: " in quote
    assert "<https://o0.example/a#:~:text=" in quote and "Wire copy 3" in quote
    assert "Wire copy 4" not in quote and " and 2 more" in quote
    assert "<!channel>" not in quote
    assert len(quote) <= MAX_SECTION_TEXT


def test_an_unanswered_question_carries_its_hint_in_blocks_and_text() -> None:
    hint = "Every word of the question is too common to search by."
    answer = Answer("what is the", answered=False, passages=[], hint=hint)
    texts = json.dumps(answer_blocks(answer, "a1"))
    assert hint in texts and hint in answer_text(answer)
