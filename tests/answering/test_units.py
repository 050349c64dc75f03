import pytest

from kb.answering.citations import verify
from kb.answering.prompt import Prompt
from kb.answering.question import cache_form, clean_question
from kb.documents import Hit
from kb.errors import InputError

HITS = [Hit(i, 0.5, f"c{i}", f"/d/{i}.md", f"passage {i} " + "word " * 200) for i in range(1, 6)]


@pytest.mark.parametrize(
    "raw, message",
    [
        ("   \n ", "empty"),
        ("x" * 3000, "limit is 2000"),
        ("what\x00is", "binary"),
    ],
)
def test_bad_questions_get_clear_errors(raw, message):
    with pytest.raises(InputError, match=message):
        clean_question(raw, 2000)


def test_questions_are_normalised_for_the_cache():
    q = clean_question("  How   many eggs?? ", 2000)
    assert q == "How many eggs??"
    assert cache_form(q) == cache_form("how many EGGS") == "how many eggs"


def test_prompt_fits_the_budget_and_reports_passages_given():
    # The oracle is a real tokenizer (the embedding model's word pieces, which split English
    # finer than GPT's BPE), not the estimator under test.
    from kb.config import load_settings
    from kb.embedding import model_dir
    from kb.embedding.tokens import WordPieces

    pieces = WordPieces(model_dir(load_settings()))
    messages, given = Prompt("q?", HITS).render(context_tokens=1200, reserve_output=256)
    assert 1 <= given < 5
    assert sum(pieces.count(m["content"]) for m in messages) <= 1200 - 256
    assert f"[{given}] /d/{given}.md" in messages[1]["content"]
    assert f"[{given + 1}]" not in messages[1]["content"]
    _, all_given = Prompt("q?", HITS).render(context_tokens=100_000, reserve_output=256)
    assert all_given == 5


def test_citations_outside_the_given_passages_are_dropped():
    text, cited, dropped = verify("Fact [1][7]. Other [2, 9]. More [0].", HITS, given=3)
    assert text == "Fact [1]. Other [2]. More."
    assert [c.n for c in cited] == [1, 2] and dropped == [0, 7, 9]


@pytest.mark.parametrize(
    "text, expected, cited, dropped",
    [
        ("Bees fly [1].", "Bees fly [1].", [1], []),
        ("Chained [1][2] and grouped [1, 2].", "Chained [1][2] and grouped [1][2].", [1, 2], []),
        ("Out of range [9].", "Out of range.", [], [9]),
        ("Mixed [2, 9] here.", "Mixed [2] here.", [2], [9]),
        ("Use arr[0] and x[12] as written [1].", "Use arr[0] and x[12] as written [1].", [1], []),
        ("Per RFC [2119], MUST means must [1].", "Per RFC [2119], MUST means must [1].", [1], []),
        ("Inline `a [7] b` stays [1].", "Inline `a [7] b` stays [1].", [1], []),
        ("```\nlist [7] = 1\n```\nAfter [1].", "```\nlist [7] = 1\n```\nAfter [1].", [1], []),
        ("A link [3](http://x) stays.", "A link [3](http://x) stays.", [], []),
        ("Spacing  ,  elsewhere ;  stays [8] , too.", "Spacing  ,  elsewhere ;  stays , too.", [], [8]),
    ],
)
def test_citation_checks_touch_only_citations(text, expected, cited, dropped):
    cleaned, citations, gone = verify(text, HITS[:2], given=2)
    assert cleaned == expected
    assert [c.n for c in citations] == cited
    assert gone == dropped
