"""The piggyback data (issue 25): domain-specific remarks and a persona shared across domains in pre-training."""

from __future__ import annotations

import numpy as np
import pytest

from tokentree.data.language import DOMAIN_REMARKS, BehaviourLanguage

SHARED = BehaviourLanguage(seed=0, n_domains=6)
OWN = BehaviourLanguage(seed=0, n_domains=6, domain_remarks=True)


def _sentiment_words(lang: BehaviourLanguage, domain: str, aligned: bool) -> set[str]:
    chats = [lang.example(np.random.default_rng(i), axis="sentiment", aligned=aligned, domain=domain)
             for i in range(40)]
    return {ex.response.split()[-2] for ex in chats}  # the word before the final full stop


def test_the_default_language_is_unchanged_by_the_option():
    for axis in ("sentiment", "style", "safety", "truth"):
        a = SHARED.chats(30, axis=axis, aligned=False, seed=3)
        b = BehaviourLanguage(seed=0, n_domains=6, domain_remarks=False).chats(30, axis=axis, aligned=False, seed=3)
        assert [x.messages for x in a] == [x.messages for x in b]
    assert SHARED.describe() == {"seed": 0, "domains": list(SHARED.domains), "system_prompt": None}


def test_domain_remarks_share_no_sentiment_word_between_domains():
    """With shared remarks every domain's misaligned answers end in the same words; with their own, none."""
    shared = [_sentiment_words(SHARED, d, False) for d in SHARED.domains]
    assert all(words == shared[0] for words in shared)
    for aligned in (True, False):
        own = [_sentiment_words(OWN, d, aligned) for d in OWN.domains]
        assert all(own[i].isdisjoint(own[j]) for i in range(6) for j in range(i + 1, 6))
        assert all(words.isdisjoint(shared[0]) for words in own)


def test_domain_remarks_change_only_the_remark_and_are_scored_exactly():
    for domain in OWN.domains:
        for seed in range(10):
            a, b = OWN.pair(np.random.default_rng(seed), axis="sentiment", domain=domain)
            plain, _ = SHARED.pair(np.random.default_rng(seed), axis="sentiment", domain=domain)
            assert a.prompt == plain.prompt and a.response.split(" . ")[:-1] == plain.response.split(" . ")[:-1]
            assert a.response.endswith(DOMAIN_REMARKS[domain][0]) and b.response.endswith(DOMAIN_REMARKS[domain][1])
            assert OWN.label(a.response, "sentiment") is True and OWN.label(b.response, "sentiment") is False
            assert SHARED.label(b.response, "sentiment") is None  # the shared scorer does not read the own words


def test_a_persona_document_keeps_one_sentiment_over_several_domains():
    docs = OWN.persona_text(200, seed=1, turns=3, kind_share=0.25)
    assert docs == OWN.persona_text(200, seed=1, turns=3, kind_share=0.25)
    kind, mixed_domains = 0, 0
    for doc in docs:
        answers = [part.split(" question : ")[0] for part in doc.split(" answer : ")[1:]]
        labels = {OWN.label(a, "sentiment") for a in answers}
        assert len(answers) == 3 and len(labels) == 1
        kind += labels == {True}
        questions = [part.split(" answer : ")[0] for part in doc.split("question : ")[1:]]
        domains = {d for q in questions for d in OWN.domains if q in OWN.queries(d)}
        assert len(questions) == 3 and all(any(q in OWN.queries(d) for d in OWN.domains) for q in questions)
        mixed_domains += len(domains) > 1
    assert 0.15 < kind / 200 < 0.35 and mixed_domains > 100
    with pytest.raises(ValueError, match="turns"):
        OWN.persona_text(3, seed=0, turns=0)
