"""The extractive answerer answers: the one sentence that holds the answer, cited.

Most tests call the provider directly with the hash embedder (the fake model: it only sees
shared words, so what they show comes from the sentence choice, not from semantics); the
last ones ask the sample KB through the facade with the real model.
"""

from __future__ import annotations

import pytest

from kb.answering.citations import verify
from kb.answering.prompt import Prompt
from kb.documents import Hit
from kb.embedding.hashing import HashEmbedder
from kb.providers.base import CompletionRequest
from kb.providers.extractive import MAX_WORDS, NOT_ANSWERED, ExtractiveProvider
from kb.providers.sentences import answer_kind, split_sentences, stem, trim


def _hits(*texts: str) -> list[Hit]:
    return [Hit(rank=n, score=0.5, chunk_id=f"c{n}", source=f"doc{n}.md", text=t) for n, t in enumerate(texts, 1)]


def _ask(question: str, *texts: str) -> str:
    hits = _hits(*texts)
    provider = ExtractiveProvider("extractive", HashEmbedder().embed)
    return provider.complete(CompletionRequest(question, hits, Prompt(question, hits))).text


QUEEN = (
    "Queens lay eggs, and a queen that lays eggs every day is what every queen breeder wants. "
    "At the peak of the season a productive queen lays up to 2,000 eggs per day. "
    "Most beekeepers replace the queen after two seasons."
)


def test_the_answer_bearing_sentence_beats_a_keyword_heavy_distractor_hash_embedder():
    answer = _ask("How many eggs does a queen lay per day?", QUEEN)
    assert answer == "At the peak of the season a productive queen lays up to 2,000 eggs per day. [1]"


def test_a_when_question_gets_the_sentence_with_the_time_hash_embedder():
    oxalic = (
        "Oxalic acid is an oxalic acid treatment used against varroa mites by beekeepers who use oxalic acid. "
        "Beekeepers use oxalic acid in midwinter, while the colony is broodless. "
        "Oxalic acid crystals dissolve in sugar syrup."
    )
    assert _ask("When do beekeepers use oxalic acid?", oxalic) == (
        "Beekeepers use oxalic acid in midwinter, while the colony is broodless. [1]"
    )


def test_a_sentence_that_only_repeats_the_question_loses_to_one_that_adds_to_it_hash_embedder():
    nurses = "Young worker bees clean cells. Nurse bees feed the larvae. Nurse bees give larvae royal jelly."
    assert _ask("What do nurse bees feed the larvae?", nurses) == "Nurse bees give larvae royal jelly. [1]"


def test_the_sentence_with_the_measure_asked_for_beats_one_with_another_number_hash_embedder():
    space = "Langstroth described the bee space in 1851. The bee space measures 6 to 9 millimetres."
    assert _ask("How wide is the bee space?", space) == "The bee space measures 6 to 9 millimetres. [1]"


def test_an_answer_may_repeat_the_question_around_one_new_word_hash_embedder():
    bees = "Drones emerge 24 days after the egg is laid. A worker emerges 21 days after the egg is laid."
    answer = _ask("How many days after the egg is laid does a worker emerge?", bees)
    assert answer == "A worker emerges 21 days after the egg is laid. [1]"


def test_a_title_is_never_the_answer_hash_embedder():
    text = "SWARM CONTROL METHODS\n\nSwarm control is done by giving colonies space early."
    assert _ask("How is swarm control done?", text) == "Swarm control is done by giving colonies space early. [1]"


def test_a_sentence_that_refers_back_comes_with_the_one_it_completes_hash_embedder():
    formic = (
        "Varroa mites breed in capped brood. "
        "Formic acid is the only common treatment that reaches mites inside capped brood. "
        "It is temperature sensitive: apply it only when daytime maxima stay between 10 and 29 °C."
    )
    answer = _ask("At what temperature should formic acid be applied?", formic)
    assert answer == (
        "Formic acid is the only common treatment that reaches mites inside capped brood. "
        "It is temperature sensitive: apply it only when daytime maxima stay between 10 and 29 °C. [1]"
    )


def test_a_question_the_passages_do_not_answer_says_so_without_quoting_hash_embedder():
    hits = _hits(QUEEN, "Beeswax candles burn with a warm light and a faint scent of honey.")
    provider = ExtractiveProvider("extractive", HashEmbedder().embed)
    completion = provider.complete(CompletionRequest("Who invented the smoker?", hits, Prompt("q", hits)))
    assert completion.text == NOT_ANSWERED
    text, citations, dropped = verify(completion.text, hits, completion.passages_given)
    assert (text, citations, dropped) == (NOT_ANSWERED, [], [])


def test_no_sentences_at_all_is_not_answered_hash_embedder():
    assert _ask("What is bee space?", "Home | Equipment") == NOT_ANSWERED


def test_the_citation_is_the_passage_the_sentence_came_from_and_survives_verification_hash_embedder():
    hits = _hits(
        "Beeswax candles burn with a warm light and a faint scent of honey.",
        "Swarms are gentle. Hive a caught swarm in the evening and feed it syrup for a week.",
    )
    provider = ExtractiveProvider("extractive", HashEmbedder().embed)
    completion = provider.complete(CompletionRequest("When should a swarm be hived?", hits, Prompt("q", hits)))
    assert completion.text == "Hive a caught swarm in the evening and feed it syrup for a week. [2]"
    text, citations, dropped = verify(completion.text, hits, completion.passages_given)
    assert text == completion.text and dropped == []
    assert [(c.n, c.hit.source) for c in citations] == [(2, "doc2.md")]


def test_the_facade_answer_cites_the_source_of_its_sentence_hash_embedder(make_kb, tmp_path):
    (tmp_path / "swarms.md").write_text("# Swarms\n\nHive a caught swarm in the evening, in a shaded box.\n")
    (tmp_path / "wax.md").write_text("# Wax\n\nBeeswax candles burn with a warm light.\n")
    kb = make_kb(model="hash")
    kb.ingest([tmp_path])
    ans = kb.ask("When should a caught swarm be hived?", use_cache=False)
    assert ans.provider == "extractive"
    assert ans.answer.startswith("Hive a caught swarm in the evening")
    cited = [c.hit.source for c in ans.citations]
    assert len(cited) == 1 and cited[0].endswith("swarms.md") and ans.dropped_citations == []


def test_a_long_sentence_is_cut_to_the_word_limit_hash_embedder():
    long = (
        "The waggle dance encodes the distance to the food, and the dancer repeats the run many times, "
        "and the followers touch her with their antennae, and they smell the scent of the flowers on her body, "
        "and then they leave the hive and fly in the direction she showed until they find the same flowers "
        "that she found earlier in the day."
    )
    answer = _ask("What does the waggle dance encode?", long)
    assert len(answer.split()) <= MAX_WORDS + 1  # the words, then the citation
    assert answer.startswith("The waggle dance encodes the distance to the food") and answer.endswith("… [1]")


def test_a_clause_that_ends_in_a_colon_comes_with_what_follows_hash_embedder():
    sugar = (
        "Count mites before you decide to treat. The sugar roll test is gentle and accurate: take about 300 bees "
        "(half a cup) from a brood frame, shake them with two tablespoons of icing sugar in a jar with a mesh lid, "
        "and count the mites that fall out, then divide the count by three to get the mites per hundred bees."
    )
    answer = _ask("How accurate is the sugar roll test?", sugar)
    assert answer.startswith("The sugar roll test is gentle and accurate: take about 300 bees")
    assert len(answer.split()) <= MAX_WORDS + 1


def test_leading_discourse_words_are_trimmed_hash_embedder():
    text = "Workers clean cells. However, the oldest workers forage for nectar and pollen."
    assert _ask("Which workers forage for nectar?", text) == "The oldest workers forage for nectar and pollen. [1]"


def test_the_same_question_gets_the_same_answer_hash_embedder():
    assert _ask("How many eggs does a queen lay per day?", QUEEN) == _ask(
        "How many eggs does a queen lay per day?", QUEEN
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("First one. Second one.", ["First one.", "Second one."]),
        ("Use e.g. this one. It is 3.5 cm long.", ["Use e.g. this one.", "It is 3.5 cm long."]),
        ("1. **Eggs.** Eggs stand upright\n   in cells.\n2. **Brood.** Brood is capped.", None),
        ("A line\nwrapped here.\n\nNew paragraph", ["A line wrapped here.", "New paragraph"]),
    ],
)
def test_sentences_are_split_without_markup_or_wrapping(text, expected):
    got = split_sentences(text)
    if expected is None:
        assert got == ["Eggs.", "Eggs stand upright in cells.", "Brood.", "Brood is capped."]
    else:
        assert got == expected


def test_stemming_matches_the_forms_questions_and_passages_mix():
    assert stem("hives") == stem("hive") == stem("hived")
    assert stem("colonies") == stem("colony")
    assert stem("swarming") == stem("swarm")
    assert stem("capped") == stem("cap")
    assert stem("fed") == stem("feeding") == stem("feed")


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When does a queen emerge?", "time"),
        ("In which month is honey harvested?", "time"),
        ("What month is honey harvested?", "time"),
        ("How many eggs does a queen lay?", "number"),
        ("How much honey does a colony give?", "number"),
        ("Who built the movable frame hive?", "name"),
        ("Where do drones mate?", "place"),
        ("Why do colonies swarm?", "reason"),
        ("What is propolis?", "definition"),
        ("What does mkstemp return?", None),
    ],
)
def test_the_question_says_what_kind_of_words_answer_it(question, kind):
    assert answer_kind(question) == kind


def test_trim_keeps_a_sentence_that_only_starts_like_fluff():
    assert trim("Also, the queen lays.") == "The queen lays."
    assert trim("Alsoing words stay.") == "Alsoing words stay."


def test_sample_kb_answers_with_one_short_cited_sentence(sample_kb):
    ans = sample_kb.ask("When does a queen emerge?", use_cache=False)
    assert "16 days" in ans.answer and len(ans.answer.split()) <= MAX_WORDS
    assert [c.hit.source.rsplit("/", 1)[-1] for c in ans.citations] == ["bee_biology.md"]


def test_sample_kb_says_it_does_not_know_what_it_does_not_hold(sample_kb):
    ans = sample_kb.ask("What is the capital of Peru?", use_cache=False)
    assert (ans.answer, ans.citations) == (NOT_ANSWERED, [])
