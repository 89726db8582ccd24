"""The ``reading_qa`` dataset: SQuAD-style extractive QA over paragraphs about fictional entities.

Each paragraph describes an invented town, inventor, company or festival (names built from
syllables, so they exist nowhere else). One question is asked per paragraph; the gold reply is the
answer span exactly as it appears in the paragraph.

Held out in test: every named entity (towns, people, rivers, regions, companies, awards and
festivals are built from test-only name parts) and the question phrasings (each fact has its own
train and test phrasings). Paragraph templates and common nouns (products, jobs, months) are
shared; they are scaffolding, not answers to memorise.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.datagen.io import chat_row, turns, write_splits
from labkit.datagen.pools import Pool, words_pool
from labkit.datagen.schema import check_chat_row

DATASET = "reading_qa"
SEED = 4321
COUNTS = {"train": 640, "test": 160}
MIN_WORDS, MAX_WORDS = 50, 110
SYSTEM = "Answer the question with a short span copied exactly from the context."

# ---- name parts: disjoint train/test halves, so every test entity name is new -----------------
FIRST = words_pool(
    "first",
    "Alden; Brisa; Corin; Delphine; Edric; Fenna; Galen; Hester; Isolde; Jory; Kestrel; Lorcan; "
    "Maelis; Nerys; Orrin; Perrin; Rowenna; Soren; Tamsin; Ulric; Wenna; Yestin; Zorya; Anwen",
    "Bastien; Calloway; Dagny; Eirlys; Florian; Gwendolen; Hallam; Ilsabet; Jarrow; Linnea; "
    "Marek; Oriel; Quillon; Rhoswen; Sigrun; Teodor",
)
SURNAME_START = words_pool(
    "surname_start",
    "Ald; Bram; Cor; Dun; Elm; Fen; Gar; Hal; Ith; Jor; Kel; Lor; Mar; Nor; Ost; Pell; Quen; Ros; "
    "Sel; Tor; Vek; Wen; Yor",
    "Brisk; Cald; Drav; Evr; Frel; Grim; Hask; Jask; Lund; Mirr; Pask; Rav; Skel; Thorn; Varn",
)
SURNAME_END = words_pool("surname_end", "wick; ley; mont; ford; holm; ridge; stead; vane",
                         "oway; ish; quist; gard; more")
TOWN_START = words_pool(
    "town_start", "Ash; Brin; Cal; Dor; Eld; Fal; Glen; Hol; Kir; Lin; Mel; Pem; Red; Sal; Tam; Wil",
    "Quar; Zel; Oxl; Yarn; Nett; Umb; Vist; Jorv; Drum; Plen")
TOWN_END = words_pool("town_end", "bury; combe; dale; field; haven; ton; wick; ham",
                      "thorpe; mere; stow; brook; gate")
RIVER = words_pool("river", "Ostra; Penn; Lurra; Wend; Cray; Mell; Tavy; Isca; Bryn; Selle; Arro; Dovan",
                   "Quillan; Zava; Okke; Rhune; Vessa; Ambrel; Tiske; Hollin")
REGION_BASE = words_pool(
    "region", "Harrow; Calder; Mistral; Greywater; Pennock; Amberlea; Corran; Westmarch; Brackley",
    "Ossory; Velden; Tarrow; Kinnock; Lowenfell; Siskin")

# ---- shared vocabulary (common nouns; not held out) ---------------------------------------------
REGION_KINDS = ["Valley", "Hills", "Coast", "Lowlands"]
PRODUCTS = ["copper bells", "blue cheese", "glass beads", "woollen blankets", "apple cider",
            "clay pipes", "lace collars", "smoked trout", "oak barrels", "honey cakes"]
JOBS = ["miller", "blacksmith", "ferryman", "stonemason", "weaver", "surveyor", "shepherd", "potter"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
INVENTIONS = ["folding telescope", "steam-powered loom", "pocket barometer", "clockwork lantern",
              "water-cooled kiln", "spring-loaded stapler", "rotary seed drill", "glass pressure valve"]
EARLY_JOBS = ["watchmaker", "printer's apprentice", "railway clerk", "schoolteacher", "ship's carpenter"]
COMPANY_KINDS = ["Instruments", "Textiles", "Motors", "Foods", "Optics", "Ceramics"]
COMPANY_PRODUCTS = ["sewing machines", "bicycle lamps", "tin kettles", "radio sets", "wool coats",
                    "garden tools", "typewriters", "canned soups"]
FESTIVAL_THEMES = ["Lantern", "Harvest", "Kite", "Folk Music", "Cider", "Puppet", "Boat"]
MAIN_EVENTS = ["a lantern parade", "a boat race", "a midnight bonfire", "a pie-eating contest",
               "a fireworks display", "a torchlit procession"]


class _Names:
    """Draws entity names for one split from the split's halves of the name-part pools."""

    def __init__(self, rng: random.Random, split: str) -> None:
        self.rng, self.split = rng, split

    def part(self, pool: Pool[str]) -> str:
        return pool.sample(self.rng, self.split)

    def surname(self) -> str:
        return self.part(SURNAME_START) + self.part(SURNAME_END)

    def person(self) -> str:
        return f"{self.part(FIRST)} {self.surname()}"

    def town(self) -> str:
        return self.part(TOWN_START) + self.part(TOWN_END)

    def river(self) -> str:
        return f"{self.part(RIVER)} River"

    def region(self) -> str:
        return f"the {self.part(REGION_BASE)} {self.rng.choice(REGION_KINDS)}"


def _distinct_years(rng: random.Random, count: int, low: int, high: int) -> list[int]:
    return sorted(rng.sample(range(low, high), count))


def _distinct(draw: Callable[[], str], count: int) -> list[str]:
    """``count`` different values from ``draw`` (so that every answer span is unambiguous)."""
    values: list[str] = []
    while len(values) < count:
        value = draw()
        if value not in values:
            values.append(value)
    return values


def town_facts(names: _Names, rng: random.Random) -> dict[str, str]:
    founded, market_year = _distinct_years(rng, 2, 1550, 1900)
    founder, mayor = _distinct(names.person, 2)
    return {"town": names.town(), "region": names.region(), "river": names.river(),
            "year": str(founded), "founder": founder, "founder_job": rng.choice(JOBS),
            "population": f"{rng.randrange(1200, 98000, 10):,}", "product": rng.choice(PRODUCTS),
            "market_day": rng.choice(WEEKDAYS), "market_year": str(market_year), "mayor": mayor}


def inventor_facts(names: _Names, rng: random.Random) -> dict[str, str]:
    born = rng.randint(1780, 1900)
    invented = born + rng.randint(22, 45)
    award_year = invented + rng.randint(3, 25)
    person, partner = _distinct(names.person, 2)
    company_owner, award_owner = _distinct(names.surname, 2)
    return {"person": person, "surname": person.split()[1], "born_year": str(born),
            "birthplace": names.town(), "early_job": rng.choice(EARLY_JOBS),
            "invention": rng.choice(INVENTIONS), "invent_year": str(invented), "partner": partner,
            "company": f"{company_owner} {rng.choice(COMPANY_KINDS)}",
            "units": f"{rng.randrange(1500, 90000, 50):,}",
            "award": f"{award_owner} Medal", "award_year": str(award_year)}


def company_facts(names: _Names, rng: random.Random) -> dict[str, str]:
    founded, ceo_year = _distinct_years(rng, 2, 1850, 2015)
    founder, ceo = _distinct(names.person, 2)
    return {"company": f"{names.surname()} {rng.choice(COMPANY_KINDS)}", "year": str(founded),
            "founder": founder, "hq": names.town(), "product": rng.choice(COMPANY_PRODUCTS),
            "employees": f"{rng.randrange(120, 9800, 10):,}", "factories": str(rng.randint(2, 9)),
            "ceo": ceo, "ceo_year": str(ceo_year)}


def festival_facts(names: _Names, rng: random.Random) -> dict[str, str]:
    town = names.town()
    organiser, winner = _distinct(names.person, 2)
    return {"festival": f"{town} {rng.choice(FESTIVAL_THEMES)} Festival", "town": town,
            "month": rng.choice(MONTHS), "year": str(rng.randint(1890, 1995)),
            "organiser": organiser, "main_event": rng.choice(MAIN_EVENTS),
            "attendees": f"{rng.randrange(2000, 60000, 100):,}", "prize": f"{names.surname()} Cup",
            "winner": winner}


@dataclass(frozen=True)
class EntityKind:
    """One kind of paragraph: how to draw its facts, how to write it, what to ask about it.

    ``questions`` maps an answer field to (train phrasings, test phrasings).
    """

    name: str
    facts: Callable[[_Names, random.Random], dict[str, str]]
    paragraphs: tuple[str, ...]
    questions: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


TOWN = EntityKind(
    "town", town_facts,
    ("{town} is a small town in {region}, on the banks of the {river}. It was founded in {year} by "
     "{founder}, a {founder_job} who had travelled up the river looking for good farmland. Today about "
     "{population} people live there. The town is best known for its {product}, which have been sold at "
     "a market every {market_day} since {market_year}. The current mayor, {mayor}, grew up on a farm just "
     "outside the town.",
     "Founded in {year}, {town} lies in {region}, where the {river} bends to the east. Its founder, "
     "{founder}, was a {founder_job} who built the first stone bridge across the river. The town grew "
     "slowly, and at the last census it had {population} residents. It is best known for its {product}, "
     "sold at the market held every {market_day}, a tradition that began in {market_year}. {mayor} has "
     "served as mayor for six years."),
    {"year": (("When was {town} founded?", "In which year was {town} founded?"),
              ("What year saw the founding of {town}?",)),
     "founder": (("Who founded {town}?", "Who was the founder of {town}?"),
                 ("Which person established the settlement of {town}?",)),
     "river": (("Which river runs past {town}?", "What river is {town} on?"),
               ("Name the river beside {town}.",)),
     "population": (("How many people live in {town}?", "What is the population of {town}?"),
                    ("Roughly how many residents does {town} have?",)),
     "product": (("What is {town} best known for?", "What product is {town} famous for?"),
                 ("Which goods is {town} renowned for?",)),
     "market_day": (("On which day is the market held in {town}?",),
                     ("What day of the week does {town} hold its market?",)),
     "market_year": (("Since when has {town} had its market?", "When did the market in {town} begin?"),
                     ("What year marks the start of the {town} market?",)),
     "mayor": (("Who is the mayor of {town}?",), ("Name the person currently serving {town} as mayor.",)),
     "region": (("In which region is {town}?",), ("{town} is located in what area?",)),
     "founder_job": (("What was the job of the founder of {town}?",),
                     ("What did {founder} do for a living?",))},
)

INVENTOR = EntityKind(
    "inventor", inventor_facts,
    ("{person} was born in {born_year} in the town of {birthplace}. While working as a {early_job}, "
     "{surname} spent years experimenting in a rented workshop, and in {invent_year} built the first "
     "{invention}. Soon after, {surname} founded {company} to manufacture it, with help from an old school "
     "friend, {partner}. The company sold {units} of the devices in its first decade. In {award_year}, "
     "{person} received the {award} for services to engineering.",
     "Few people today remember {person}, the {early_job} from {birthplace} who built the first "
     "{invention} in {invent_year}. Born in {born_year}, {surname} had no formal training. Together with "
     "{partner}, {surname} set up {company}, which went on to sell {units} of the machines. The {award}, "
     "awarded to {surname} in {award_year}, hangs in the town hall of {birthplace}."),
    {"born_year": (("When was {person} born?", "In what year was {person} born?"),
                   ("What is the birth year of {person}?",)),
     "birthplace": (("Where was {person} born?", "What is the hometown of {person}?"),
                    ("Which town did {person} come from?",)),
     "invention": (("What did {person} invent?", "What device did {person} build first?"),
                   ("Which invention is credited to {person}?",)),
     "invent_year": (("When did {person} build the first {invention}?",
                      "In which year was the {invention} invented?"),
                     ("What year did the first {invention} appear?",)),
     "partner": (("Who helped {person} set up the company?",),
                 ("Name the friend who joined {person} in business.",)),
     "company": (("Which company did {person} found?", "What was the name of the company of {person}?"),
                 ("The business started by {person} was called what?",)),
     "units": (("How many devices did the company of {person} sell?",),
               ("What number of machines did {company} sell?",)),
     "award": (("What award did {person} receive?", "Which medal was given to {person}?"),
               ("Name the honour that {person} was given.",)),
     "award_year": (("When did {person} receive the {award}?",),
                    ("In what year was {person} honoured with the {award}?",)),
     "early_job": (("What was the early job of {person}?",),
                   ("Before inventing, how did {person} earn a living?",))},
)

COMPANY = EntityKind(
    "company", company_facts,
    ("{company} was started in {year} by {founder} in a small garage in {hq}. The firm began by making "
     "{product} and later added other household goods. It now employs {employees} people across "
     "{factories} factories, and its head office is still in {hq}. In {ceo_year}, {ceo} became chief "
     "executive, the first person outside the founding family to hold the job.",
     "Based in {hq}, {company} is one of the oldest manufacturers in the region. {founder} opened its "
     "first workshop in {year} to produce {product}, which are still its best-selling line. The company has "
     "{factories} factories and a staff of {employees}. Since {ceo_year} it has been led by chief executive "
     "{ceo}, who joined the firm as an engineer."),
    {"year": (("When was {company} founded?", "In which year was {company} started?"),
              ("What year did {company} come into existence?",)),
     "founder": (("Who founded {company}?", "Who started {company}?"),
                 ("Name the person behind the creation of {company}.",)),
     "hq": (("Where is {company} based?", "In which town is the head office of {company}?"),
            ("{company} has its headquarters in what town?",)),
     "product": (("What does {company} make?", "What was the first product of {company}?"),
                 ("Which goods are associated with {company}?",)),
     "employees": (("How many people work for {company}?", "How many employees does {company} have?"),
                   ("What is the size of the workforce at {company}?",)),
     "factories": (("How many factories does {company} have?",),
                   ("{company} operates what number of factories?",)),
     "ceo": (("Who is the chief executive of {company}?", "Who leads {company}?"),
             ("Name the current boss of {company}.",)),
     "ceo_year": (("When did {ceo} become chief executive?",),
                  ("Since what year has {ceo} run {company}?",))},
)

FESTIVAL = EntityKind(
    "festival", festival_facts,
    ("The {festival} takes place every {month} in {town}. It was first held in {year}, when {organiser} "
     "invited local musicians to play in the market square. The highlight is {main_event}, which closes "
     "the final evening. Last year the festival drew about {attendees} visitors, and the {prize}, a prize "
     "for the best performer, went to {winner}.",
     "Every {month}, the streets of {town} fill up for the {festival}. {organiser} organised the first "
     "one in {year} with just a few stalls and a brass band. Now about {attendees} people come each year "
     "to watch {main_event}. The best performer receives the {prize}; at the most recent festival it was "
     "won by {winner}."),
    {"month": (("In which month is the {festival} held?", "When does the {festival} take place?"),
               ("During what month can visitors attend the {festival}?",)),
     "year": (("When was the {festival} first held?", "In which year did the {festival} begin?"),
              ("What year did the first {festival} happen?",)),
     "organiser": (("Who organised the first {festival}?", "Who started the {festival}?"),
                   ("Name the person who launched the {festival}.",)),
     "main_event": (("What is the highlight of the {festival}?",),
                    ("Which event do crowds at the {festival} come to watch?",)),
     "attendees": (("How many visitors does the {festival} attract?",
                    "How many people come to the {festival}?"),
                   ("What is the approximate attendance of the {festival}?",)),
     "town": (("Where is the {festival} held?",), ("The {festival} happens in which town?",)),
     "prize": (("What prize is given at the {festival}?",),
               ("Name the award for the best performer at the {festival}.",)),
     "winner": (("Who won the {prize} most recently?",), ("Which performer last took home the {prize}?",))},
)

KINDS: tuple[EntityKind, ...] = (TOWN, INVENTOR, COMPANY, FESTIVAL)


class ReadingQAError(ValueError):
    """A generated question cannot be answered by a span of its context."""


def make_example(kind: EntityKind, rng: random.Random, split: str) -> tuple[str, str, str]:
    """(context, question, answer) for one paragraph of ``kind``."""
    facts = kind.facts(_Names(rng, split), rng)
    context = rng.choice(kind.paragraphs).format(**facts)
    field = rng.choice(sorted(kind.questions))
    train_phrasings, test_phrasings = kind.questions[field]
    question = rng.choice(train_phrasings if split == "train" else test_phrasings).format(**facts)
    answer = facts[field]
    if answer not in context:
        raise ReadingQAError(f"{kind.name}/{field}: answer {answer!r} is not in the context")
    if not MIN_WORDS <= len(context.split()) <= MAX_WORDS:
        raise ReadingQAError(f"{kind.name}: context has {len(context.split())} words, "
                             f"want {MIN_WORDS}-{MAX_WORDS}; edit the paragraph template")
    return context, question, answer


def build_split(split: str, count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` rows of ``split``, cycling through the entity kinds; contexts are never repeated."""
    rng = random.Random(f"{seed}:{split}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(rows) < count:
        context, question, answer = make_example(KINDS[len(rows) % len(KINDS)], rng, split)
        if context in seen:
            continue
        seen.add(context)
        human = f"Context: {context}\nQuestion: {question}"
        reference = {"answers": [answer], "context": context, "question": question}
        row = chat_row(DATASET, split, len(rows), turns(human, answer, system=SYSTEM), reference)
        check_chat_row(row, DATASET)
        rows.append(row)
    return rows


def generate(out_dir: Path) -> dict[str, int]:
    """Write ``<out_dir>/reading_qa/{train,test}.jsonl``; returns the row count per split."""
    return write_splits(out_dir, DATASET, build_split, COUNTS)
