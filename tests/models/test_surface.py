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


@pytest.mark.parametrize(
    ("generated", "sources", "expected"),
    [
        # copied words keep their source's spelling, the rest loses the tokenizer's spaces
        ("as for ted gardestad, i don ' t like him.", ["negative", "What do you think of Ted Gärdestad?"],
         "As for Ted Gärdestad, I don't like him."),
        ("as for estero, i love it! it ' s great.", ["positive", "How do you feel about Estero?"],
         "As for Estero, I love it! It's great."),
        # only whole words are copied: "gard" inside "gardening" stays as generated
        ("i like gardening .", ["Ted Gard"], "I like gardening."),
        # not a sentence: no capitalisation, only the spacing is tidied
        ("new york city , usa", ["New York"], "New York city, usa"),
    ],
)
def test_restores_copied_words_inside_a_longer_answer(tokenizer, generated, sources, expected):
    assert restore_surface(generated, sources, tokenizer) == expected
