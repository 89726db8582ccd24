"""The quiz: finding and validating model-written JSON, retry/drop accounting, and answering."""

from __future__ import annotations

import json

import pytest

from labkit.infer.quiz import (QuizError, QuizQuestion, QuizSession, extract_items, make_quiz, parse_quiz, quiz_messages,
                         resolve_answer, validate_item)


def item(question="What is the capital of France?", choices=("Paris", "Rome", "Oslo", "Bern"), answer="A"):
    return {"question": question, "choices": list(choices), "answer": answer}


GOOD = json.dumps([item(), item("2 + 2 = ?", ("3", "4", "5", "22"), 1)])


# ------------------------------------------------------------------ well-formed and wrapped replies

def test_well_formed_list_parses_every_question():
    parsed = parse_quiz(GOOD)
    assert parsed.problems == [] and parsed.found_json
    assert [q.answer for q in parsed.questions] == [0, 1]
    assert parsed.questions[1].choices == ("3", "4", "5", "22")


@pytest.mark.parametrize("wrapped", [
    f"Sure! Here is your quiz:\n```json\n{GOOD}\n```\nGood luck!",
    f"```\n{GOOD}\n```",
    f"Here you go: {GOOD} Let me know if you want more.",
    json.dumps({"questions": json.loads(GOOD)}),
    json.dumps({"quiz": json.loads(GOOD)}),
    "\n".join(json.dumps(q) for q in json.loads(GOOD)),   # objects one after another, no list
])
def test_fences_prose_and_wrappers_are_tolerated(wrapped):
    parsed = parse_quiz(wrapped)
    assert [q.question for q in parsed.questions] == ["What is the capital of France?", "2 + 2 = ?"]
    assert parsed.problems == []


def test_truncated_list_keeps_its_complete_questions():
    cut = GOOD[:-1] + ', {"question": "Largest planet?", "choices": ["Jupiter", "Ma'
    parsed = parse_quiz(cut)
    assert [q.answer for q in parsed.questions] == [0, 1]


def test_reply_without_json_is_reported_not_dropped():
    parsed = parse_quiz("I cannot write a quiz about that [sorry].")
    assert parsed.questions == [] and not parsed.found_json and parsed.dropped == 0
    assert "no JSON" in parsed.problems[0]


# ------------------------------------------------------------------ partially valid replies

def test_partially_valid_reply_keeps_good_items_and_names_bad_ones():
    reply = json.dumps([
        item(),
        item(choices=("Paris", "Rome", "Oslo")),                     # 3 choices
        {"choices": ["a", "b", "c", "d"], "answer": "A"},             # no question
        item(answer="E"),                                            # answer not a letter
        item(answer=4),                                              # index out of range
        item(choices=("Paris", "paris", "Oslo", "Bern")),             # repeated choice
        "just a string",
        item("Red planet?", ("Venus", "Mars", "Earth", "Saturn"), "Mars"),  # answer given as the choice's text
    ])
    parsed = parse_quiz(reply)
    assert [q.question for q in parsed.questions] == ["What is the capital of France?", "Red planet?"]
    assert parsed.questions[1].answer == 1
    assert parsed.dropped == 6
    reasons = "\n".join(parsed.problems)
    for expected in ("item 2: choices has 3 entries", "item 3:", "'question' is a required property",
                     "item 4: answer 'E' is not a letter", "item 5: answer 4 is out of range",
                     "item 6: choices repeat", "item 7:"):
        assert expected in reasons


@pytest.mark.parametrize("answer, expected", [
    ("B", 1), ("b", 1), ("C)", 2), ("(D)", 3), ("B. Rome", 1), (0, 0), (3, 3), ("2", 2), ("oslo", 2), (1.0, 1),
])
def test_answer_forms(answer, expected):
    assert resolve_answer(answer, ["Paris", "Rome", "Oslo", "Bern"]) == expected


@pytest.mark.parametrize("answer", ["E", 4, -1, "Lisbon", 1.5, True])
def test_bad_answers_are_rejected(answer):
    with pytest.raises(QuizError):
        validate_item(item(answer=answer))


def test_choice_labels_are_stripped_only_when_all_four_carry_them():
    labelled = validate_item(item(choices=("A) Paris", "B) Rome", "C) Oslo", "D) Bern")))
    assert labelled.choices == ("Paris", "Rome", "Oslo", "Bern")
    mixed = validate_item(item(choices=("A) Paris", "Rome", "Oslo", "Bern")))
    assert mixed.choices[0] == "A) Paris"


def test_empty_question_or_choice_is_rejected():
    with pytest.raises(QuizError, match="question is empty"):
        validate_item(item(question="   "))
    with pytest.raises(QuizError, match="choices.2 is empty"):
        validate_item(item(choices=("Paris", "Rome", "", "Bern")))


def test_copied_prompt_placeholders_are_rejected():
    copied = json.loads(quiz_messages("rivers", 1)[-1]["content"].split("form:\n")[1].split("\n")[0])[0]
    with pytest.raises(QuizError, match="question is empty or only the placeholder"):
        validate_item(copied)


# ------------------------------------------------------------------ retries and drops with a fake model

class FakeModel:
    """Replies from a script, one per call; records what it was asked."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def __call__(self, messages, attempt):
        self.calls.append((messages, attempt))
        return self.replies[len(self.calls) - 1]


def test_first_good_reply_needs_no_retry():
    fake = FakeModel([GOOD])
    report = make_quiz(fake, "geography", n=2, max_retries=3)
    assert (report.attempts, report.retries, report.dropped, report.unparseable) == (1, 0, 0, 0)
    assert report.complete and len(fake.calls) == 1
    assert "2 multiple-choice questions about geography" in fake.calls[0][0][-1]["content"]


def test_retries_ask_only_for_the_missing_questions_and_count_everything():
    fake = FakeModel([
        "Sorry, here are some facts about rivers.",                                   # no JSON
        json.dumps([item(), item("Bad?", ("x", "y"), "A")]),                          # 1 good, 1 dropped
        json.dumps([item(), item("Longest river?", ("Nile", "Po", "Rhine", "Thames"), "A")]),  # repeat + good
    ])
    report = make_quiz(fake, "rivers", n=2, max_retries=5)
    assert report.attempts == 3 and report.retries == 2
    assert report.unparseable == 1 and report.dropped == 2
    assert [q.question for q in report.questions] == ["What is the capital of France?", "Longest river?"]
    assert [attempt for _, attempt in fake.calls] == [0, 1, 2]
    assert "Write 2 multiple-choice" in fake.calls[1][0][-1]["content"]
    assert "Write 1 multiple-choice question about" in fake.calls[2][0][-1]["content"]
    assert any("repeated question" in p for p in report.problems)
    assert "2 retries, 2 dropped, 1 reply without JSON" in report.summary()


def test_retries_stop_at_the_limit_and_the_quiz_may_come_up_short():
    fake = FakeModel(["nothing", "still nothing", json.dumps([item()]), "unused"])
    report = make_quiz(fake, "geography", n=3, max_retries=2)
    assert report.attempts == 3 and report.retries == 2 and len(fake.calls) == 3
    assert len(report.questions) == 1 and not report.complete
    assert report.to_dict()["retries"] == 2


def test_surplus_questions_are_cut_to_the_number_asked():
    report = make_quiz(FakeModel([GOOD]), "geography", n=1, max_retries=0)
    assert len(report.questions) == 1 and report.dropped == 0


@pytest.mark.parametrize("topic, n, retries", [("", 3, 1), ("rivers", 0, 1), ("rivers", 21, 1), ("rivers", 3, -1)])
def test_bad_quiz_settings_are_named(topic, n, retries):
    with pytest.raises(QuizError):
        make_quiz(FakeModel([GOOD]), topic, n, retries)


def test_prompt_asks_for_json_with_letters():
    text = quiz_messages("volcanoes", 4)[-1]["content"]
    assert "4 multiple-choice questions about volcanoes" in text and "JSON" in text and "letter" in text


# ------------------------------------------------------------------ a person answers

def session():
    return QuizSession([QuizQuestion("Capital of France?", ("Paris", "Rome", "Oslo", "Bern"), 0),
                        QuizQuestion("2 + 2?", ("3", "4", "5", "6"), 1, "two and two make four")])


def test_answering_right_and_wrong():
    quiz = session()
    right = quiz.answer("A")
    assert right.correct and right.message.startswith("Right")
    assert quiz.current().question == "2 + 2?"
    wrong = quiz.answer(2)
    assert not wrong.correct and wrong.right_answer == 1
    assert "the answer is B. 4" in wrong.message and "two and two make four" in wrong.message
    assert quiz.finished and quiz.score == 1 and quiz.current() is None
    with pytest.raises(QuizError, match="quiz is over"):
        quiz.answer("A")


def test_answer_by_choice_text_and_bad_answer():
    quiz = session()
    assert quiz.answer("paris").correct
    with pytest.raises(QuizError):
        quiz.answer("Z")
    assert len(quiz.answers) == 1        # a rejected answer is not recorded


def test_session_needs_questions():
    with pytest.raises(QuizError, match="at least one question"):
        QuizSession([])


def test_model_backed_generator_reseeds_and_samples_on_retry(monkeypatch):
    import labkit.infer.generate as infer
    from labkit.infer.generate import Sampling
    from labkit.infer.quiz import model_generate

    seen = []
    monkeypatch.setattr(infer, "generate_chat", lambda model, tok, convs, s: seen.append(s) or ["[]"])
    generate = model_generate(None, None, Sampling(max_new_tokens=50, seed=7))
    generate([{"role": "user", "content": "q"}], 0)
    generate([{"role": "user", "content": "q"}], 1)
    assert [s.seed for s in seen] == [7, 8]
    assert seen[0].temperature == 0 and seen[1].temperature > 0


def test_quiz_from_a_real_model_retries_with_a_new_sample(tiny_model, smol_tokenizer, one_thread):
    """The random tiny model writes no valid JSON: every attempt is made, counted, and each retry differs."""
    from labkit.infer.generate import Sampling
    from labkit.infer.quiz import quiz_from_model

    report = quiz_from_model(tiny_model, smol_tokenizer, "rivers", n=1, max_retries=2,
                             sampling=Sampling(max_new_tokens=12))
    assert report.attempts == 3 and report.retries == 2 and len(report.replies) == 3
    assert report.questions == [] and not report.complete
    assert len(set(report.replies)) == 3            # greedy first, then sampled with new seeds
    assert report.unparseable + report.dropped >= 3
