"""Generated news stories that teach the reader who said what: who made a claim, who
denied it (often without the word "deny": "called it a fabrication", "said this was a
lie"), who could not verify it, who confirmed it.

SQuAD teaches the reader to find the sentence that holds an answer, but its questions
rarely ask about a stance, and its answering sentences share the question's words. News
questions ask "who denied the … claim" of a sentence that says "X said the report was
false", beside the sentence that makes the claim and names every word of the question.
These stories are written here from word lists (no outside text, so no license to
inherit), seeded, and each yields a few questions whose answer is one sentence of the
story; the other sentences of the story, and a sentence of the same stance about another
story's claim, are the negatives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bot.answering.reader import reader_text
from bot.training.examples import Example

# Who is accused, with what (a clause after "that", the gerund phrase after "of", and
# the claim's name as a headline would put it).
_DEEDS = [
    ("{s} dumped toxic waste into {p}", "dumping toxic waste into {p}", "waste dumping"),
    ("{s} rigged the vote in {p}", "rigging the vote in {p}", "vote-rigging"),
    ("{s} tortured detainees held in {p}", "torturing detainees held in {p}", "torture"),
    ("{s} bribed officials in {p}", "bribing officials in {p}", "bribery"),
    ("{s} falsified safety tests at {p}", "falsifying safety tests at {p}", "test-tampering"),
    ("{s} sold weapons to militias near {p}", "selling weapons to militias near {p}", "arms"),
    ("{s} burned records kept at {p}", "burning records kept at {p}", "record-burning"),
    ("{s} buried executed prisoners near {p}", "burying executed prisoners near {p}", "mass grave"),
    ("{s} shelled the hospital in {p}", "shelling the hospital in {p}", "hospital shelling"),
    ("{s} hid cholera cases in {p}", "hiding cholera cases in {p}", "cholera cover-up"),
    ("{s} spied on reporters in {p}", "spying on reporters in {p}", "spying"),
    ("{s} diverted flood aid meant for {p}", "diverting flood aid meant for {p}", "aid-diversion"),
    ("{s} used forced labor at {p}", "using forced labor at {p}", "forced labor"),
    ("{s} poisoned wells around {p}", "poisoning wells around {p}", "poisoning"),
    ("{s} blocked food convoys bound for {p}", "blocking food convoys bound for {p}", "blockade"),
    ("{s} deported refugees from {p}", "deporting refugees from {p}", "deportation"),
]
_ACCUSED = [
    ("the army", "army officials", "The Defense Ministry"),
    ("the mining company", "company executives", "The company"),
    ("the ruling party", "party leaders", "The party"),
    ("the regional government", "regional officials", "The governor's office"),
    ("prison guards", "prison authorities", "The Justice Ministry"),
    ("the police", "police commanders", "The Interior Ministry"),
    ("the rebels", "rebel commanders", "The rebel command"),
    ("the chemical plant", "plant managers", "The plant's owner"),
    ("the federal agency", "agency officials", "The agency"),
    ("the shipping firm", "the firm's lawyers", "The firm"),
]
_PLACES = [
    "the Varna valley",
    "the port of Kessel",
    "Lake Oru",
    "the northern province",
    "the capital's outskirts",
    "the Tamsin district",
    "the border town of Elk Ridge",
    "the Maro camp",
    "the eastern hills",
    "the old quarry at Dunmore",
    "the island of Pell",
    "the Sadek military base",
    "the river delta",
    "the mountain villages",
    "Fort Halden",
    "the industrial zone",
]
_FIRST = [
    "Maria",
    "James",
    "Amina",
    "Tomas",
    "Li",
    "Fatima",
    "Peter",
    "Elena",
    "Omar",
    "Grace",
    "Yusuf",
    "Hannah",
    "Diego",
    "Ingrid",
    "Samuel",
    "Nadia",
]
_LAST = [
    "Delgado",
    "Okafor",
    "Brandt",
    "Haddad",
    "Chen",
    "Novak",
    "Reyes",
    "Lindqvist",
    "Mensah",
    "Kovacs",
    "Sato",
    "Farouk",
    "Moreau",
    "Walsh",
    "Petrov",
    "Ibarra",
]
_ACCUSERS = [
    "the State Department",
    "human rights investigators",
    "a parliamentary committee",
    "the opposition",
    "a watchdog group",
    "local activists",
    "the prosecutor's office",
    "a coalition of aid groups",
    "the union",
    "exiled journalists",
]
_ACCUSER_TITLES = [
    "Assistant Secretary of State",
    "lead investigator",
    "committee chair",
    "opposition leader",
    "the group's director",
    "prosecutor",
]
_NEUTRAL = [
    "The United Nations",
    "The Red Cross",
    "The European Union",
    "An independent monitor",
    "The World Health Organization",
    "The court",
]
_NEUTRAL_PEOPLE = [
    "U.N. spokesman",
    "a Red Cross official",
    "EU spokeswoman",
    "the monitor's chief",
    "a WHO representative",
]
_EVIDENCE = [
    "satellite photographs",
    "leaked documents",
    "witness statements",
    "drone footage",
    "internal emails",
    "lab results",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "on Sunday", "last week"]
_MOTIVES = [
    "justify sanctions",
    "distract from the election",
    "win foreign support",
    "damage the peace talks",
    "cover up their own failures",
]

# How a denial is said. {d}: who denies; {n}: the claim's name ("the torture claim");
# most do not use the word "deny", and some refer to the sentence before ("this").
_DENIALS = [
    "{d} denied {n}.",
    "{d} denied the accusation, calling it baseless.",
    "{d} rejected {n} as politically motivated.",
    "{d} dismissed the allegations as lies.",
    "{d} called the report a fabrication.",
    "{d} said the accusation was false.",
    "{d} insisted that nothing of the kind had happened.",
    "{d} say this is a lie meant to {m}.",
    "{d} said this was untrue and aimed to {m}.",
    "{d} called the story pure fiction invented to {m}.",
    "{d} flatly refuted the report.",
    "{d} said the claims had no basis in fact.",
    "{d} maintain that the photographs were faked to {m}.",
    "{d} told reporters the allegation was a smear.",
    "Speaking for {dl}, a spokesman said the charges were invented.",
    "{d} said the evidence was fabricated.",
]
_CLAIMS = [
    "{a} said {c}.",
    "{a} accused {s} of {g}.",
    "According to {a}, {c}.",
    "In a report released {day}, {a} alleged that {c}.",
    "{pa} said {e} showed that {c}.",
    "{pa} presented {e} of what {a} believe shows that {c}.",
]
_UNVERIFIED = [
    "{pu} said {ul} could not independently verify reports of {k} in {p}.",
    "{u} said it could not independently verify the reports.",
    "{u} said it could not confirm the reports about {p}.",
    "{pu} told reporters that {ul} had no way to check the claims.",
    "{u} declined to comment on the allegations.",
    "{u} said it was looking into the reports from {p}.",
]
_CONFIRMS = [
    "{who} confirmed that its own staff had seen similar evidence.",
    "{who} said its researchers had reached the same conclusion.",
    "{who} backed the findings, saying they matched its records.",
]
_CONTEXT = [
    "{s_cap} has faced criticism over conditions in {p} for years.",
    "{p_cap} lies about 40 kilometers from the nearest city.",
    "It added that {e} would be shared with investigators.",
    "Journalists have not been allowed into {p} since the spring.",
    "{a_cap} said {e} came from people who had fled the area.",
    "The allegation came as talks on a ceasefire resumed {day}.",
]
# Evidence for the claim, naming it with the question's own words: what "this" in the
# denial after it may refer to, and no denial however many words it shares.
_SHOWN = [
    "During a briefing, {pa} showed {e} of the alleged {k} in {p}.",
    "{pa} said {e} pointed to {k} on a large scale.",
    "It added that the {k} was being hidden from inspectors.",
    "{a_cap} published {e} that it said documented the {k}.",
    "{pa} presented {e} of the {k} site believed to be near {p}.",
]
_DENIAL_QUESTIONS = [
    "who denied the {k} claim",
    "Who denied the {k} claim?",
    "Who rejected the accusation that {c}?",
    "Who says the {k} report is false?",
    "How did {sl} respond to the {k} allegations?",
    "Who dismissed the claim about {p}?",
]
_CLAIM_QUESTIONS = [
    "Who accused {s} of {g}?",
    "Who made the {k} allegation?",
    "Who said {c}?",
]
_UNVERIFIED_QUESTIONS = [
    "What did {ul} say about the {k} reports?",
    "Who could not verify the {k} reports?",
]
_CONFIRM_QUESTIONS = ["Who confirmed the {k} findings?", "Who backed the {k} report?"]


@dataclass(frozen=True)
class _Story:
    title: str
    sentences: list[str]
    # Role name -> index of the sentence in `sentences`.
    roles: dict[str, int]
    questions: list[tuple[str, str]]  # (question, role)


def stance_examples(count: int, seed: int) -> list[Example]:
    """`count` examples (a question, its answering sentence, negatives) from generated
    stories, the same for the same seed."""
    rng = random.Random(f"{seed}:stance")
    examples: list[Example] = []
    pool: list[_Story] = []
    while len(examples) < count:
        story = _story(rng)
        pool = (pool + [story])[-20:]
        for question, role in story.questions:
            others = [s for s in pool if s is not story and role in s.roles]
            examples.append(
                _example(
                    f"stance:{len(examples)}:{role}",
                    story,
                    question,
                    role,
                    rng.choice(others) if others else None,
                )
            )
            if len(examples) == count:
                break
    return examples


def _example(id: str, story: _Story, question: str, role: str, other: _Story | None) -> Example:
    answer = story.roles[role]
    texts = [_read(story, i) for i in range(len(story.sentences))]
    # The evidence is the accuser's too: it answers who made the claim as well.
    also = story.roles.get("shown") if role == "claim" else None
    negatives = [t for i, t in enumerate(texts) if i not in (answer, also)]
    if other is not None:  # the same stance about another claim
        negatives.append(_read(other, other.roles[role]))
    return Example(id=id, question=question, positive=texts[answer], negatives=negatives)


def _read(story: _Story, i: int) -> str:
    return reader_text(story.sentences[i], story.sentences[i - 1] if i else "", story.title)


def _story(rng: random.Random) -> _Story:
    clause, gerund, kind = rng.choice(_DEEDS)
    accused, accused_people, spokes = rng.choice(_ACCUSED)
    place = rng.choice(_PLACES)
    accuser = rng.choice(_ACCUSERS)
    person = f"{rng.choice(_ACCUSER_TITLES)} {rng.choice(_FIRST)} {rng.choice(_LAST)}"
    neutral = rng.choice(_NEUTRAL)
    neutral_person = f"{rng.choice(_NEUTRAL_PEOPLE)} {rng.choice(_FIRST)} {rng.choice(_LAST)}"
    confirmer = rng.choice([n for n in _NEUTRAL if n != neutral])
    spokesperson = rng.choice(["Spokesman", "Spokeswoman", "Minister"])
    denier = rng.choice(
        [
            spokes,
            _cap(accused_people),
            f"{spokesperson} {rng.choice(_FIRST)} {rng.choice(_LAST)}",
        ]
    )
    c = clause.format(s=accused, p=place)
    fields = {
        "s": accused,
        "p": place,
        "c": c,
        "g": gerund.format(p=place),
        "a": accuser,
        "pa": person,
        "e": rng.choice(_EVIDENCE),
        "day": rng.choice(_DAYS),
        "m": rng.choice(_MOTIVES),
        "u": neutral,
        "pu": neutral_person,
        "ul": neutral.replace("The ", "the ", 1).replace("An ", "an ", 1),
        "k": kind,
        "sl": accused_people,
        "dl": accused,
        "d": denier,
        "n": f"the {kind} claim",
        "s_cap": accused[0].upper() + accused[1:],
        "p_cap": place[0].upper() + place[1:],
        "a_cap": accuser[0].upper() + accuser[1:],
    }
    claim = _cap(rng.choice(_CLAIMS).format(**fields))
    denial = _cap(rng.choice(_DENIALS).format(**fields))
    # The denial follows the claim or its elaboration (what "this" refers to); the
    # others fall anywhere after the claim.
    body = [claim]
    roles = {"claim": 0}
    if rng.random() < 0.7:
        body.append(_cap(rng.choice(_SHOWN).format(**fields)))
        roles["shown"] = len(body) - 1
    elif rng.random() < 0.6:
        body.append(_cap(rng.choice(_CONTEXT).format(**fields)))
    body.append(denial)
    roles["denial"] = len(body) - 1
    rest = [("context", _cap(rng.choice(_CONTEXT).format(**fields)))]
    if rng.random() < 0.8:
        rest.append(("unverified", _cap(rng.choice(_UNVERIFIED).format(**fields))))
    if rng.random() < 0.4:
        rest.append(("confirm", _cap(rng.choice(_CONFIRMS).format(who=confirmer))))
    if rng.random() < 0.5:  # "denial" named by someone who does not deny
        rest.append(("criticism", f"{_cap(accuser)} said the denial was not credible."))
    rng.shuffle(rest)
    for role, sentence in rest:
        if sentence not in body:
            body.append(sentence)
            roles.setdefault(role, len(body) - 1)
    title = rng.choice(
        [
            f"{_cap(accused)} denies {kind} claim",
            f"{_cap(accuser)} accuses {accused} over {place}",
            f"Report alleges {kind} in {place}",
        ]
    )
    questions = [(rng.choice(_DENIAL_QUESTIONS).format(**fields), "denial")]
    questions.append((rng.choice(_CLAIM_QUESTIONS).format(**fields), "claim"))
    if "unverified" in roles:
        questions.append((rng.choice(_UNVERIFIED_QUESTIONS).format(**fields), "unverified"))
    if "confirm" in roles and rng.random() < 0.5:
        questions.append((rng.choice(_CONFIRM_QUESTIONS).format(**fields), "confirm"))
    rng.shuffle(questions)
    return _Story(title, body, roles, [q for q in questions if q[1] in roles])


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]
