"""A quiz written by the model: N multiple-choice questions on a topic, as structured (JSON) output.

Small models are unreliable JSON writers, so every step is defensive and counted:

- :func:`extract_items` finds the JSON in a reply that may wrap it in code fences or prose, and salvages the
  complete question objects of a list cut off by the token limit;
- :func:`validate_item` checks each question against :data:`ITEM_SCHEMA` (with ``jsonschema``) plus the rules a
  schema cannot say (the answer must point at one of the four choices), with a reason for every rejection;
- :func:`make_quiz` asks again (up to ``max_retries`` times) while questions are missing and reports how many
  generations were retried and how many questions were dropped, and why;
- :class:`QuizSession` lets a person answer the questions one by one and see right or wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

LETTERS = "ABCD"
MAX_QUESTIONS = 20

# Some character other than space and dots: a small model often copies the prompt's "..." placeholders.
_REAL_TEXT = r"[^\s.\u2026]"
# One question as the model must write it. ``answer`` is a letter (A-D), a 0-based index (0-3) or the text of
# the correct choice; :func:`resolve_answer` turns all three into an index.
ITEM_SCHEMA: dict = {
    "type": "object",
    "required": ["question", "choices", "answer"],
    "properties": {
        "question": {"type": "string", "pattern": _REAL_TEXT},
        "choices": {"type": "array", "minItems": 4, "maxItems": 4,
                    "items": {"type": ["string", "number"], "pattern": _REAL_TEXT}},
        "answer": {"type": ["integer", "string"]},
        "explanation": {"type": "string"},
    },
}

# generate(messages, attempt) -> the model's reply text; attempt counts from 0 (retries can reseed with it).
QuizGenerate = Callable[[list[dict], int], str]


class QuizError(ValueError):
    """Bad quiz settings or a bad answer; the message says what to change."""


@dataclass(frozen=True)
class QuizQuestion:
    question: str
    choices: tuple[str, str, str, str]
    answer: int                      # index of the correct choice, 0-3
    explanation: str = ""

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer]


# ------------------------------------------------------------------ finding the JSON in a reply

_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


def _json_values(text: str) -> list[Any]:
    """Every JSON array or object found left to right in ``text``, skipping prose and broken fragments.

    When a value fails to decode (a list truncated by the token limit, a trailing comma), the scan moves on one
    character, so the complete objects inside the broken list are still found one by one.
    """
    decoder = json.JSONDecoder()
    values, position = [], 0
    while True:
        starts = [i for i in (text.find("[", position), text.find("{", position)) if i >= 0]
        if not starts:
            return values
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        values.append(value)
        position = end


def _question_list(value: Any) -> list | None:
    """``value`` as a list of question items: a list holding objects, or a wrapper like {"questions": [...]}."""
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return value
    if isinstance(value, dict) and "question" not in value:
        lists = [v for v in value.values() if isinstance(v, list) and _question_list(v) is not None]
        return lists[0] if lists else None
    return None


def extract_items(text: str) -> list[Any] | None:
    """The list of question items in a model reply, or None when the reply holds no JSON.

    Accepts a bare list, a list inside a code fence or prose, a wrapper such as ``{"questions": [...]}``, one
    question object, or several objects written one after another (also what is left of a truncated list).
    """
    fenced = _FENCE.findall(text)
    values = (_json_values("\n".join(fenced)) if fenced else []) or _json_values(text)
    for value in values:
        items = _question_list(value)
        if items is not None:
            return items
    objects = [value for value in values if isinstance(value, dict)]
    lists = [value for value in values if isinstance(value, list)]
    return objects or (lists[0] if lists else None)


# ------------------------------------------------------------------ validating one question

def _schema_reasons(item: Any) -> list[str]:
    from jsonschema import Draft202012Validator

    reasons = []
    for error in sorted(Draft202012Validator(ITEM_SCHEMA).iter_errors(item), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "question object"
        if error.validator in ("minItems", "maxItems"):
            reasons.append(f"{where} has {len(error.instance)} entries; a question needs exactly 4 choices")
        elif error.validator == "pattern":
            reasons.append(f"{where} is empty or only the placeholder '...'")
        else:
            reasons.append(f"{where}: {error.message}")
    return reasons


_LABEL = re.compile(r"^\s*\(?([A-Da-d])[).:]\s+")


def _strip_labels(choices: list[str]) -> list[str]:
    """Drop "A) " ... "D) " prefixes when all four choices carry them in order (models often add them)."""
    matches = [_LABEL.match(choice) for choice in choices]
    if all(m and m.group(1).upper() == LETTERS[i] for i, m in enumerate(matches)):
        return [choice[m.end():].strip() for choice, m in zip(choices, matches)]
    return choices


def resolve_answer(answer: int | str, choices: list[str]) -> int:
    """The index of the correct choice from a letter ("B", "b)", "B. Paris"), a 0-based index or a choice's text."""
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        if answer == int(answer) and 0 <= int(answer) < 4:
            return int(answer)
        raise QuizError(f"answer {answer!r} is out of range: use a letter A-D or an index 0-3")
    text = str(answer).strip()
    label = re.match(r"^\(?([A-Da-d])(?:$|[).:]\s*)", text)
    if label:
        return LETTERS.index(label.group(1).upper())
    if text.isdigit() and int(text) < 4:
        return int(text)
    lowered = [choice.strip().lower() for choice in choices]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    raise QuizError(f"answer {text!r} is not a letter A-D, an index 0-3 or the text of one of the choices")


def validate_item(item: Any) -> QuizQuestion:
    """One question object as a :class:`QuizQuestion`; raises QuizError naming every problem found."""
    reasons = _schema_reasons(item)
    if reasons:
        raise QuizError("; ".join(reasons))
    choices = _strip_labels([str(choice).strip() for choice in item["choices"]])
    if len({choice.lower() for choice in choices}) < 4:
        raise QuizError(f"choices repeat ({choices}); the four choices must differ")
    answer = resolve_answer(item["answer"], choices)
    return QuizQuestion(item["question"].strip(), tuple(choices), answer, item.get("explanation", "").strip())


@dataclass
class ParsedReply:
    questions: list[QuizQuestion]
    problems: list[str]           # one reason per dropped item (or one for a reply with no JSON)
    found_json: bool

    @property
    def dropped(self) -> int:
        return len(self.problems) if self.found_json else 0


def parse_quiz(text: str) -> ParsedReply:
    """The valid questions of one model reply, and a reason for each item that was dropped."""
    items = extract_items(text)
    if items is None:
        return ParsedReply([], ["the reply holds no JSON list of questions"], found_json=False)
    questions, problems = [], []
    for number, item in enumerate(items, 1):
        try:
            questions.append(validate_item(item))
        except QuizError as err:
            problems.append(f"item {number}: {err}")
    return ParsedReply(questions, problems, found_json=True)


# ------------------------------------------------------------------ asking the model

SYSTEM_PROMPT = "You write multiple-choice quizzes. You reply with JSON only."


def quiz_messages(topic: str, n: int) -> list[dict]:
    example = '[{"question": "...", "choices": ["...", "...", "...", "..."], "answer": "A"}]'
    prompt = (f"Write {n} multiple-choice question{'s' if n != 1 else ''} about {topic}. Each question has exactly "
              f"4 choices and one correct answer. Reply with only a JSON list in this form:\n{example}\n"
              "The answer is the letter (A, B, C or D) of the correct choice.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


@dataclass
class QuizReport:
    """The quiz and how it was obtained: retries and drops are counted, never hidden."""

    topic: str
    requested: int
    questions: list[QuizQuestion] = field(default_factory=list)
    attempts: int = 0             # generations made
    unparseable: int = 0          # replies with no JSON at all
    dropped: int = 0              # question items rejected (invalid or a repeat)
    problems: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return max(self.attempts - 1, 0)

    @property
    def complete(self) -> bool:
        return len(self.questions) >= self.requested

    def summary(self) -> str:
        return (f"{len(self.questions)} of {self.requested} questions on {self.topic!r}: {self.attempts} "
                f"generation(s), {self.retries} retr{'y' if self.retries == 1 else 'ies'}, {self.dropped} dropped, "
                f"{self.unparseable} repl{'y' if self.unparseable == 1 else 'ies'} without JSON")

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(retries=self.retries, complete=self.complete)
        return data


def _check_settings(topic: str, n: int, max_retries: int) -> None:
    if not topic or not topic.strip():
        raise QuizError("quiz topic is empty: give a subject, e.g. topic='the solar system'")
    if not 1 <= n <= MAX_QUESTIONS:
        raise QuizError(f"quiz size n={n} is out of range: ask for 1 to {MAX_QUESTIONS} questions")
    if max_retries < 0:
        raise QuizError(f"max_retries={max_retries} is negative: use 0 (no retry) or more")


def make_quiz(generate: QuizGenerate, topic: str, n: int = 5, max_retries: int = 2) -> QuizReport:
    """Ask ``generate`` for ``n`` questions; while some are missing, ask again for the rest (``max_retries`` times).

    Valid questions from every attempt are kept (repeats dropped); invalid items are dropped with a reason.
    """
    _check_settings(topic, n, max_retries)
    report = QuizReport(topic.strip(), n)
    seen = set()
    for attempt in range(1 + max_retries):
        missing = n - len(report.questions)
        if missing <= 0:
            break
        reply = generate(quiz_messages(report.topic, missing), attempt)
        report.attempts += 1
        report.replies.append(reply)
        parsed = parse_quiz(reply)
        report.unparseable += not parsed.found_json
        report.dropped += parsed.dropped
        report.problems += [f"attempt {attempt + 1}, {problem}" for problem in parsed.problems]
        for number, question in enumerate(parsed.questions, 1):
            key = question.question.lower()
            if key in seen:
                report.dropped += 1
                report.problems.append(f"attempt {attempt + 1}: repeated question {question.question!r} dropped")
                continue
            seen.add(key)
            report.questions.append(question)
    report.questions = report.questions[:n]
    return report


def model_generate(model, tokenizer, sampling=None, retry_temperature: float = 0.7) -> QuizGenerate:
    """A :data:`QuizGenerate` backed by a chat model.

    Each attempt gets its own seed, and a retry samples (``retry_temperature``) when the settings are greedy:
    greedy decoding would repeat the failed reply word for word.
    """
    from labkit.infer.generate import Sampling, generate_chat

    base = sampling or Sampling(max_new_tokens=512)

    def generate(messages: list[dict], attempt: int) -> str:
        settings = replace(base, seed=base.seed + attempt)
        if attempt > 0 and settings.temperature <= 0:
            settings = replace(settings, temperature=retry_temperature, top_p=0.95)
        return generate_chat(model, tokenizer, [messages], settings)[0]

    return generate


def quiz_sampling(n: int):
    """Greedy settings with room for ``n`` questions (about 120 new tokens each)."""
    from labkit.infer.generate import Sampling

    return Sampling(max_new_tokens=max(256, 120 * n))


def quiz_from_model(model, tokenizer, topic: str, n: int = 5, max_retries: int = 2, sampling=None) -> QuizReport:
    """:func:`make_quiz` with a chat model (:func:`quiz_sampling` unless ``sampling`` is given)."""
    generate = model_generate(model, tokenizer, sampling or quiz_sampling(n))
    return make_quiz(generate, topic, n, max_retries)


# ------------------------------------------------------------------ a person takes the quiz

@dataclass(frozen=True)
class Feedback:
    correct: bool
    chosen: int
    right_answer: int
    message: str


@dataclass
class QuizSession:
    """Answer the questions in order; each answer says right or wrong and moves to the next question."""

    questions: list[QuizQuestion]
    answers: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.questions:
            raise QuizError("a quiz session needs at least one question (the model wrote none that were valid; "
                            "try again, or allow more retries)")

    @property
    def finished(self) -> bool:
        return len(self.answers) >= len(self.questions)

    @property
    def score(self) -> int:
        return sum(a == q.answer for a, q in zip(self.answers, self.questions))

    def current(self) -> QuizQuestion | None:
        return None if self.finished else self.questions[len(self.answers)]

    def answer(self, choice: int | str) -> Feedback:
        """Answer the current question with a letter, a 0-based index or the choice's text."""
        question = self.current()
        if question is None:
            raise QuizError(f"the quiz is over ({self.score}/{len(self.questions)}); start a new one")
        chosen = resolve_answer(choice, list(question.choices))
        self.answers.append(chosen)
        right = question.answer
        if chosen == right:
            message = f"Right: {LETTERS[right]}. {question.choices[right]}"
        else:
            message = f"Wrong: you chose {LETTERS[chosen]}; the answer is {LETTERS[right]}. {question.choices[right]}"
        if question.explanation:
            message += f" ({question.explanation})"
        return Feedback(chosen == right, chosen, right, message)

    def progress(self) -> str:
        return f"{self.score} right out of {len(self.answers)} answered ({len(self.questions)} questions)"
