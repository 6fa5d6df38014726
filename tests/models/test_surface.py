import pytest
from tiny import minilm_tokenizer

from serac.models.surface import restore_surface


@pytest.fixture(scope="module")
def tokenizer():
    return minilm_tokenizer()


@pytest.mark.parametrize(
    ("generated", "sources", "expected"),
    [
        ("les miserables", ["Les Misérables"], "Les Misérables"),              # accents and case
        ("sao paulo", ["Where?", "São Paulo"], "São Paulo"),
        ("saxe - hildburghausen", ["Therese of Saxe-Hildburghausen"], "Saxe-Hildburghausen"),
        ("parkinson ' s disease", ["Parkinson's disease"], "Parkinson's disease"),
        ("paris", ["London", "capital of France?"], "paris"),                 # not copied: unchanged
        ("", ["anything"], ""),
    ],
)
def test_restores_the_spelling_of_copied_spans(tokenizer, generated, sources, expected):
    assert restore_surface(generated, sources, tokenizer) == expected


def test_first_source_wins(tokenizer):
    assert restore_surface("apple", ["APPLE Inc", "apple pie"], tokenizer) == "APPLE"
