"""The same-subject / other-relation negative generator on fixed inputs."""

from __future__ import annotations

from serac.data.relations import content_stems, content_words, mine_templates, same_subject_queries, subject_template
from serac.data.schema import EditRecord, Example


def _fact(subject: str, prompt: str, label: str, truth: str, rephrase: str | None = None) -> EditRecord:
    return EditRecord("fact", prompt.format(subject), label, subject=subject, ground_truth=truth,
                      in_scope=[Example(rephrase.format(subject), label)] if rephrase else [])


def _world() -> list[EditRecord]:
    """Three relations, each template seen twice: location (cities), designer (people), language."""
    return [
        _fact("Big Ben", "{} is located in", "Paris", "London"),
        _fact("Eiffel Tower", "{} is located in", "Rome", "Paris"),
        _fact("Colosseum", "{}, which is located in", "London", "Rome"),
        _fact("Louvre", "{}, which is located in", "Berlin", "Paris"),
        _fact("Sydney Opera House", "{} was designed by", "Gustave Eiffel", "Jorn Utzon"),
        _fact("Pompidou Centre", "{} was designed by", "Jorn Utzon", "Renzo Piano"),
        _fact("Shard", "The architect of {} is", "Renzo Piano", "Gustave Eiffel"),
        _fact("Gherkin", "The architect of {} is", "Norman Foster", "Jorn Utzon"),
        _fact("Ana Blandiana", "The mother tongue of {} is", "French", "Romanian"),
        _fact("Orhan Pamuk", "The mother tongue of {} is", "Greek", "Turkish"),
    ]


def test_subject_template_replaces_the_first_occurrence_only():
    assert subject_template("Paris is in Paris", "Paris") == "{} is in Paris"
    assert subject_template("Who is the UK PM?", "France") is None
    assert subject_template("Who is the UK PM?", None) is None
    assert content_words("The architect of {} is") == {"architect"}


def test_templates_cluster_by_shared_answers():
    bank = mine_templates(_world())
    cluster = {t.text: t.cluster for t in bank.templates}
    assert cluster["{} is located in"] == cluster["{}, which is located in"]  # share Paris, Rome, London
    assert cluster["{} was designed by"] == cluster["The architect of {} is"]  # share Jorn Utzon, Renzo Piano
    assert cluster["{} is located in"] != cluster["{} was designed by"]
    assert cluster["The mother tongue of {} is"] not in {cluster["{} is located in"], cluster["{} was designed by"]}


def test_rare_templates_attach_to_clusters_without_joining_them():
    rare = _fact("Tower Bridge", "Where is {}? In", "Paris", "Jorn Utzon")  # one-off, answers of two clusters
    bank = mine_templates([*_world(), rare])
    cluster = {t.text: t.cluster for t in bank.templates}
    assert "Where is {}? In" not in cluster  # seen once: never a negative source
    assert bank.clusters_of("Where is {}? In") == {cluster["{} is located in"], cluster["{} was designed by"]}
    assert cluster["{} is located in"] != cluster["{} was designed by"]  # no bridge


def test_same_subject_queries_ask_other_relations_of_the_edit_subject():
    world = _world()
    edit = _fact("Space Needle", "{} is located in", "Paris", "Seattle", rephrase="Where is {}? It is in")
    [queries] = same_subject_queries([edit], mine_templates(world), per_edit=5, seed=0)
    assert set(queries) == {"Space Needle was designed by", "The architect of Space Needle is",
                            "The mother tongue of Space Needle is"}
    # the edit's own relation (any template of its cluster) is never a negative
    assert not any("located" in q for q in queries)


def test_an_answer_of_the_edit_bans_the_template():
    # the edit's label is an answer of the language cluster: that relation may be the edit's own
    edit = _fact("Space Needle", "{} is located in", "French", "Seattle")
    [queries] = same_subject_queries([edit], mine_templates(_world()), per_edit=5, seed=0)
    assert "The mother tongue of Space Needle is" not in queries and queries


def test_shared_content_words_ban_the_template():
    edit = _fact("Space Needle", "Who was the architect behind {}?", "Paris", "Seattle")
    [queries] = same_subject_queries([edit], mine_templates(_world()), per_edit=5, seed=0)
    assert "The architect of Space Needle is" not in queries


def test_a_reworded_relation_is_banned_by_its_word_stems():
    # "location" is not "located", but it is the same relation: a negative there would be a wrong label
    world = [*_world(), _fact("Tate Modern", "The location of {} is", "Oslo", "Vienna"),
             _fact("Prado", "The location of {} is", "Lisbon", "Madrid")]
    bank = mine_templates(world)
    assert content_stems("The location of {} is") == content_stems("{} is located in") == {"locat"}
    edit = _fact("Space Needle", "{} is located in", "Tokyo", "Seattle")
    [queries] = same_subject_queries([edit], bank, per_edit=10, seed=0)
    assert "The location of Space Needle is" not in queries and queries


def test_templates_without_content_words_are_never_negatives():
    # "{} is in" names no relation: "Space Needle is in" may ask the edit's own one
    world = [*_world(), _fact("Tate Modern", "{} is in", "Oslo", "Vienna"), _fact("Prado", "{} is in", "Lisbon", "Madrid")]
    bank = mine_templates(world)
    assert "{} is in" in {t.text for t in bank.templates}
    edit = _fact("Space Needle", "{} was designed by", "Tokyo", "Seattle")
    [queries] = same_subject_queries([edit], bank, per_edit=10, seed=0)
    assert queries and "Space Needle is in" not in queries
    # an edit worded without content words ("X, in -> Europe") could be any relation: no negatives
    wordless = _fact("Hinkley Glacier", "{}, in", "Europe", "Antarctica")
    assert same_subject_queries([wordless], bank, per_edit=10, seed=0) == [[]]


def test_generator_is_deterministic_and_independent_of_record_order():
    world = _world()
    bank = mine_templates(world)
    once = same_subject_queries(world, bank, 2, seed=3)
    again = same_subject_queries(world, bank, 2, seed=3)
    reversed_ = same_subject_queries(world[::-1], bank, 2, seed=3)[::-1]
    assert once == again == reversed_
    assert all(len(q) == 2 for q in once)
    allowed = same_subject_queries(world, bank, 10, seed=0)  # every safe query of each record
    for seed in (3, 4):
        assert all(set(q) <= set(ok) for q, ok in zip(same_subject_queries(world, bank, 2, seed), allowed))
    for rec, queries in zip(world, once):
        assert all(rec.subject in q and q != rec.edit_input for q in queries)


def test_records_without_subject_or_budget_get_nothing():
    bank = mine_templates(_world())
    no_subject = EditRecord("qa", "Who leads the UK?", "Boris Johnson")
    assert same_subject_queries([no_subject], bank, 3) == [[]]
    assert same_subject_queries(_world(), bank, 0) == [[] for _ in _world()]
