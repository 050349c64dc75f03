"""Metric functions against values computed by hand."""

import math

import pytest

from kb.evaluation.metrics import (
    contains_answer,
    mrr_at,
    ndcg_at,
    normalize_answer,
    ranking_scores,
    recall_at,
    token_f1,
)

L2, L3 = math.log2(3), 2.0  # log2(rank + 1) at ranks 2 and 3


def test_graded_ndcg_recall_and_mrr():
    qrels = {"b": 2, "c": 1, "d": 1}
    ranked = ["a", "b", "c"]
    dcg = 2 / L2 + 1 / L3  # a misses at rank 1
    ideal = 2 / 1 + 1 / L2 + 1 / L3
    assert ndcg_at(ranked, qrels) == pytest.approx(dcg / ideal)
    assert ndcg_at(ranked, qrels) == pytest.approx(0.56273, abs=1e-5)
    assert recall_at(ranked, qrels, 10) == pytest.approx(2 / 3)
    assert recall_at(ranked, qrels, 2) == pytest.approx(1 / 3)
    assert mrr_at(ranked, qrels) == 0.5


def test_cut_off_is_applied():
    ranked = [f"x{i}" for i in range(10)] + ["rel"]
    assert ndcg_at(ranked, {"rel": 1}, 10) == 0.0
    assert mrr_at(ranked, {"rel": 1}, 10) == 0.0
    assert recall_at(ranked, {"rel": 1}, 10) == 0.0
    assert recall_at(ranked, {"rel": 1}, 100) == 1.0
    assert mrr_at(ranked, {"rel": 1}, 11) == pytest.approx(1 / 11)


def test_a_document_listed_twice_counts_once_at_its_first_rank():
    qrels = {"b": 2, "c": 1, "d": 1}
    assert ndcg_at(["a", "b", "a", "b", "c"], qrels) == pytest.approx(ndcg_at(["a", "b", "c"], qrels))
    # Without deduplication "b" twice would give a DCG above the ideal one.
    assert ndcg_at(["b", "b", "b"], {"b": 1}) == 1.0
    assert recall_at(["b", "b"], {"b": 1, "c": 1}, 10) == 0.5


def test_equal_grades_are_interchangeable():
    qrels = {"x": 1, "y": 1}
    assert ndcg_at(["y", "x"], qrels) == ndcg_at(["x", "y"], qrels) == 1.0
    assert ndcg_at(["z", "x"], qrels) == pytest.approx((1 / L2) / (1 + 1 / L2))  # 0.38685
    assert ndcg_at(["z", "x"], qrels) == pytest.approx(0.38685, abs=1e-5)


def test_grade_zero_is_judged_not_relevant():
    qrels = {"a": 0, "b": 1}
    assert mrr_at(["a", "b"], qrels) == 0.5
    assert recall_at(["a"], qrels, 10) == 0.0
    assert ndcg_at(["a"], {"a": 0}) == 0.0 and recall_at(["a"], {"a": 0}, 10) == 0.0


def test_squad_normalisation():
    assert normalize_answer("  The Pagden,  method! ") == "pagden method"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("Theme") == "theme"  # articles only as whole words
    assert normalize_answer("2,000 eggs") == "2000 eggs"


def test_containment_is_on_whole_words_and_takes_any_gold():
    assert contains_answer("Take about 300 bees from a brood frame.", ["about 300 bees"])
    assert not contains_answer("Up to 100 mites.", ["10"])
    assert contains_answer("It lays up to 2,000 eggs [1].", ["two thousand", "2000"])
    assert not contains_answer("", ["x"])


def test_token_f1_is_the_best_over_golds():
    assert token_f1("the cat sat", ["cat"]) == pytest.approx(2 / 3)  # p = 1/2, r = 1
    assert token_f1("the cat sat", ["dog", "cat sat"]) == 1.0
    assert token_f1("x b b", ["b c"]) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))  # one shared b
    assert token_f1("", ["cat"]) == 0.0


def test_recall_at_100_comes_from_the_deep_ranking_the_rest_from_the_top_one():
    scores = ranking_scores(["a"], ["a", "b"], {"b": 1})
    assert scores == {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 1.0, "mrr@10": 0.0}
