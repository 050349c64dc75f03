"""Retrieval quality on sample_corpus with the real model: the expected source in the top 3."""

import pytest

QUESTIONS = [
    ("How many eggs can a queen lay in one day?", "bee_biology.md"),
    ("How long does a worker bee live in summer?", "bee_biology.md"),
    ("What does the waggle dance tell other bees?", "bee_biology.md"),
    ("How often should I inspect my hives during swarm season?", "hive_inspection.md"),
    ("What does a spotty brood pattern mean?", "hive_inspection.md"),
    ("How do I do an artificial swarm with the Pagden method?", "swarming.txt"),
    ("How many mites per 100 bees means I must treat now?", "varroa_mites.html"),
    ("How do I do a sugar roll test?", "varroa_mites.html"),
    ("What is the maximum water content of honey before it ferments?", "honey_harvest.md"),
    ("Why does acacia honey stay liquid?", "honey_harvest.md"),
    ("What is bee space?", "glossary.rst"),
    ("How wide are the slots of a queen excluder?", "glossary.rst"),
    ("What are the dimensions of a Langstroth brood box?", "equipment.html"),
    ("When should I feed sugar syrup before winter?", "seasonal_calendar.txt"),
    ("At what temperature should beeswax be poured into candle moulds?", "beeswax_candles.txt"),
    ("How is American foulbrood diagnosed with a matchstick?", "bee_health_field_manual.pdf"),
    ("What causes chalkbrood?", "bee_health_field_manual.pdf"),
    ("How much honey does a colony need to survive the winter?", "winter_preparation.pdf"),
    ("Why is damp more dangerous than cold for wintering bees?", "winter_preparation.pdf"),
]


@pytest.fixture(scope="module")
def results(sample_home):
    from kb import KnowledgeBase, SearchOptions
    from kb.config import load_settings

    kb = KnowledgeBase(load_settings(home=str(sample_home)))
    return kb.search_many([q for q, _ in QUESTIONS], SearchOptions(k=3))


@pytest.mark.parametrize("i", range(len(QUESTIONS)), ids=[q for q, _ in QUESTIONS])
def test_real_model_expected_source_in_top_3(results, i):
    question, expected = QUESTIONS[i]
    sources = [hit.source.rsplit("/", 1)[-1] for hit in results[i]]
    assert expected in sources, f"{question!r} → {sources}"
