"""The ``function_calling`` dataset: pick the right tool and fill its JSON arguments.

Each example shows a system prompt that lists a few tools as compact JSON schemas (the right one
plus 2-3 distractors, in random order), a request in natural language, and the reply: exactly one
compact JSON object ``{"arguments": {...}, "name": ...}`` with sorted keys.

Held out in test: the request phrasing templates (each tool has its own train and test templates)
and the free argument values (cities, names, amounts, texts, numbers), drawn from the test halves
of the pools in :mod:`labkit.datagen.pools`. Enumerated values (units, currency codes, ...) are
shared, because they are part of the tool's schema.

Long on purpose: most of it is the tool catalogue (21 schemas with their train and test phrasings), which
reads best in one place next to the code that samples from it.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.datagen.io import chat_row, turns, write_splits
from labkit.datagen.pools import CITIES, FIRST_NAMES, Pool, partition, words_pool
from labkit.datagen.schema import check_chat_row
from labkit.datagen.templates import template_fields

DATASET = "function_calling"
SEED = 1234
COUNTS = {"train": 800, "test": 200}
MAX_SCHEMA_CHARS = 820

SYSTEM_HEAD = "You can call these tools (JSON schema):"
SYSTEM_TAIL = ('Reply with exactly one JSON object {"arguments": {...}, "name": "<tool>"} '
               "that calls the right tool. No other text.")

CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR"]
LANGUAGES = ["French", "Spanish", "German", "Italian", "Japanese", "Portuguese"]
UNIT_GROUPS = [["kilometers", "miles"], ["kilograms", "pounds"], ["celsius", "fahrenheit"],
               ["liters", "gallons"], ["meters", "feet"]]
UNITS = [unit for group in UNIT_GROUPS for unit in group]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


SHARED_CHOICES = {"currency": CURRENCIES, "unit": UNITS, "weekday": WEEKDAYS}
"""Closed sets of values that are not held out (like enums, but kept out of the schema to save tokens)."""


def _money_candidates() -> list[float | int]:
    whole = list(range(5, 3001, 5))
    cents = [round(c / 100, 2) for c in range(199, 50000, 173) if c % 100]
    return whole + cents


def _tickers() -> list[str]:
    rng = random.Random(99)
    return sorted({"".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice([3, 4])))
                   for _ in range(120)})


def _flight_numbers() -> list[str]:
    rng = random.Random(98)
    return sorted({rng.choice(["BA", "LH", "AF", "KL", "QF", "AC", "UA", "IB"]) + str(rng.randint(10, 2999))
                   for _ in range(150)})


POOLS: dict[str, Pool[Any]] = {
    "city": CITIES,
    "name": FIRST_NAMES,
    "email": Pool("email", tuple(f"{n.lower()}@example.com" for n in FIRST_NAMES.train),
                  tuple(f"{n.lower()}@example.com" for n in FIRST_NAMES.test)),
    "money": partition("money", _money_candidates()),
    "minutes": partition("minutes", list(range(2, 181))),
    "hour": partition("hour", list(range(5, 23))),
    "minute": partition("minute", list(range(0, 60, 5))),
    "days": partition("days", list(range(2, 15)), test_percent=30),
    "small_count": partition("small_count", list(range(2, 13)), test_percent=30),
    "percent": partition("percent", list(range(5, 31)), test_percent=30),
    "quantity": partition("quantity", list(range(1, 501))),
    "ticker": partition("ticker", _tickers()),
    "flight": partition("flight", _flight_numbers()),
    "subject": words_pool(
        "subject",
        "Quarterly budget; Team lunch on Friday; Project update; Holiday schedule; Meeting notes; "
        "Invoice reminder; Welcome aboard; Weekend plans; Office move; Training session",
        "Lighthouse renovation; Choir rehearsal times; Beekeeping workshop; Kayak rental; "
        "Greenhouse repairs; Chess tournament entry; Bakery supplier contract; Roof insurance claim; "
        "Volunteer rota for March; Antique clock valuation"),
    "message": words_pool(
        "message",
        "I'm running ten minutes late; Can you call me back?; Dinner is ready; See you at the station; "
        "Don't forget the keys; The meeting moved to 3pm; Happy birthday!; I left the report on your desk; "
        "Thanks for your help today; Are you free tomorrow?",
        "The plumber arrives at noon; Bring an umbrella tonight; My train is cancelled again; "
        "Please water the tomatoes; The cat knocked over the vase; I found your scarf in my car; "
        "Save me a seat near the window; The concert starts an hour earlier; "
        "Grandma says hello; We need more firewood"),
    "phrase": words_pool(
        "phrase",
        "Where is the train station?; Good morning; How much does this cost?; I would like a coffee; "
        "Thank you very much; The library closes at six; Nice to meet you; Is this seat free?; "
        "Can I pay by card?; What time is it?",
        "The ferry leaves from the north pier; My suitcase is missing; "
        "Could you recommend a quiet hotel?; The soup is too salty; Where can I rent a bicycle?; "
        "The museum is closed on Mondays; I am allergic to peanuts; Please speak more slowly; "
        "Our guide is waiting outside; Is breakfast included?"),
    "task": words_pool(
        "task",
        "buy milk; renew passport; call the dentist; pay the electricity bill; book a haircut; "
        "clean the garage; return library books; water the plants; back up the laptop; "
        "send the tax forms",
        "repaint the fence; descale the kettle; order printer toner; service the bicycle; "
        "sharpen the kitchen knives; cancel the gym membership; label the freezer boxes; "
        "fix the squeaky door; update the emergency contacts; sort the recycling"),
    "title": words_pool(
        "title",
        "Dentist appointment; Team standup; Yoga class; Parent meeting; Budget review; Guitar lesson; "
        "Lunch with Sam; Car service; Book club; Project kickoff",
        "Pottery workshop; Chimney inspection; Orchestra audition; Vaccination visit; "
        "Tax adviser call; Piano tuning; Bird watching walk; Wedding cake tasting; "
        "Passport photo; Climbing session"),
    "artist": words_pool(
        "artist",
        "The Velvet Ravens; Luna Park; Echo Harbor; Silver Pines; The Night Owls; Marble Skies; "
        "Copper Lane; Neon Orchard; The Paper Kites Club; Blue Meridian; Crimson Atlas; The Lemon Trees; "
        "Harbor Lights; Golden Static; The Wandering Ferns; Midnight Tram; Paper Moons; Iron Meadow; "
        "The Brass Herons; Low Tide Radio",
        "Saffron Tide; The Quiet Foxes; Granite Choir; Polar Lanterns; Juniper Static; "
        "The Hollow Bells; Amber Cartography; Driftwood Union; Violet Engine; The Salt Ponies"),
    "word": words_pool(
        "word",
        "ephemeral; ubiquitous; serendipity; meticulous; resilient; candid; eloquent; frugal; "
        "pragmatic; tenacious; benevolent; ambiguous; diligent; nostalgia; verbose; vivid; "
        "cautious; humble; obscure; profound; sincere; subtle; arbitrary; coherent",
        "quixotic; laconic; obsequious; perfunctory; garrulous; ineffable; sanguine; "
        "recalcitrant; lugubrious; ostensible; capricious; fastidious"),
    "country": words_pool(
        "country",
        "France; Japan; Brazil; Canada; Egypt; India; Kenya; Mexico; Norway; Spain; Italy; Vietnam; "
        "Argentina; Germany",
        "Mongolia; Uruguay; Slovenia; Namibia; Laos; Bhutan; Iceland; Paraguay; Estonia; "
        "Madagascar; Jordan; Ecuador"),
}


@dataclass(frozen=True)
class Tool:
    """A tool: its JSON schema, where each argument's values come from, and request templates.

    ``kinds`` maps each argument to a key of :data:`POOLS`, or to ``"enum"`` (a value from the
    argument's ``enum``). Templates use ``{argument}`` placeholders (optionally with a format spec);
    the arguments a template mentions are exactly the arguments of the call.
    """

    name: str
    description: str
    properties: dict[str, dict[str, Any]]
    required: tuple[str, ...]
    kinds: dict[str, str]
    train_templates: tuple[str, ...]
    test_templates: tuple[str, ...]
    valid: Callable[[Mapping[str, Any]], bool] = field(default=lambda args: True)

    def schema(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "parameters": {"type": "object", "properties": self.properties,
                               "required": list(self.required)}}

    def templates(self, split: str) -> tuple[str, ...]:
        return self.train_templates if split == "train" else self.test_templates


def _s(enum: list[str] | None = None) -> dict[str, Any]:
    return {"type": "string", **({"enum": enum} if enum else {})}


NUM, INT = {"type": "number"}, {"type": "integer"}

TOOLS: tuple[Tool, ...] = (
    Tool("get_weather", "Current weather in a city",
         {"city": _s(), "unit": _s(["celsius", "fahrenheit"])}, ("city",),
         {"city": "city", "unit": "enum"},
         ("What's the weather like in {city} right now?",
          "How warm is it in {city} at the moment, in {unit}?",
          "Tell me the current weather in {city}.",
          "Weather for {city} in {unit}, please."),
         ("I'm about to head out in {city}. What's it like outside?",
          "Could you check today's conditions over in {city} and give me the temperature in {unit}?")),
    Tool("get_forecast", "Weather forecast for the next days",
         {"city": _s(), "days": INT}, ("city", "days"), {"city": "city", "days": "days"},
         ("Give me the {days}-day forecast for {city}.",
          "What will the weather be in {city} over the next {days} days?",
          "Forecast for {city}, {days} days ahead."),
         ("Planning a trip: how does the weather look for {city} across the coming {days} days?",
          "Outlook please, {days} days, location {city}.")),
    Tool("convert_currency", "Convert money between currencies",
         {"amount": NUM, "from_currency": _s(), "to_currency": _s()},
         ("amount", "from_currency", "to_currency"),
         {"amount": "money", "from_currency": "currency", "to_currency": "currency"},
         ("Convert {amount} {from_currency} to {to_currency}.",
          "How much is {amount} {from_currency} in {to_currency}?",
          "I have {amount} {from_currency}. What is that in {to_currency}?"),
         ("If I exchange {amount} {from_currency}, how many {to_currency} will I get back?",
          "Quick exchange question: {amount} {from_currency} into {to_currency}?"),
         valid=lambda a: a["from_currency"] != a["to_currency"]),
    Tool("set_timer", "Start a countdown timer",
         {"minutes": INT, "label": _s()}, ("minutes",), {"minutes": "minutes", "label": "title"},
         ("Set a timer for {minutes} minutes.",
          "Start a {minutes} minute timer called {label}.",
          "Timer, {minutes} minutes please."),
         ("Can you count down {minutes} minutes for me?",
          "Remind me when {minutes} minutes are up, and name the countdown {label}.")),
    Tool("set_alarm", "Set an alarm clock",
         {"hour": INT, "minute": INT}, ("hour", "minute"), {"hour": "hour", "minute": "minute"},
         ("Set an alarm for {hour}:{minute:02d}.",
          "Wake me up at {hour}:{minute:02d}.",
          "Alarm at {hour}:{minute:02d} please."),
         ("I need to be up by {hour}:{minute:02d} tomorrow, can you make sure I am?",
          "Ring me awake when the clock hits {hour}:{minute:02d}.")),
    Tool("send_email", "Send an email",
         {"to": _s(), "subject": _s()}, ("to", "subject"), {"to": "email", "subject": "subject"},
         ("Send an email to {to} with the subject {subject}.",
          "Email {to} about {subject}.",
          "Write to {to}, subject: {subject}."),
         ("Drop a quick note to {to} and title it {subject}.",
          "Compose mail for {to}; the subject line should read {subject}.")),
    Tool("send_message", "Send a text message to a contact",
         {"recipient": _s(), "text": _s()}, ("recipient", "text"), {"recipient": "name", "text": "message"},
         ('Text {recipient}: "{text}"',
          'Send a message to {recipient} saying "{text}"',
          'Tell {recipient} "{text}" by message.'),
         ('Could you let {recipient} know, via SMS, that "{text}"',
          'Ping {recipient} with this: "{text}"')),
    Tool("translate_text", "Translate text into another language",
         {"text": _s(), "target_language": _s(LANGUAGES)}, ("text", "target_language"),
         {"text": "phrase", "target_language": "enum"},
         ('Translate "{text}" into {target_language}.',
          'How do you say "{text}" in {target_language}?',
          '"{text}" in {target_language}, please.'),
         ('I need the {target_language} version of this sentence: "{text}"',
          'Render this for a {target_language} speaker: "{text}"')),
    Tool("get_stock_price", "Latest price of a stock",
         {"ticker": _s()}, ("ticker",), {"ticker": "ticker"},
         ("What is the stock price of {ticker}?",
          "How is {ticker} trading today?",
          "Price check on {ticker} shares."),
         ("Pull up the latest quote for the ticker {ticker}.",
          "Where are {ticker} shares sitting right now?")),
    Tool("search_restaurants", "Find restaurants in a city",
         {"city": _s(), "cuisine": _s(["italian", "thai", "indian", "mexican", "japanese", "vegan"])},
         ("city",), {"city": "city", "cuisine": "enum"},
         ("Find {cuisine} restaurants in {city}.",
          "Where can I eat {cuisine} food in {city}?",
          "Any good places to eat in {city}?"),
         ("I'm hungry and in {city} tonight, craving {cuisine}. Suggestions?",
          "Show me spots for dinner around {city}.")),
    Tool("book_flight", "Book a flight",
         {"origin": _s(), "destination": _s(), "passengers": INT}, ("origin", "destination"),
         {"origin": "city", "destination": "city", "passengers": "small_count"},
         ("Book a flight from {origin} to {destination}.",
          "Book {passengers} seats from {origin} to {destination}.",
          "I need a flight {origin} to {destination} for {passengers} people."),
         ("We are {passengers} travellers flying out of {origin}; get us tickets to {destination}.",
          "Reserve me a plane ticket: leaving {origin}, arriving {destination}."),
         valid=lambda a: a["origin"] != a["destination"]),
    Tool("create_event", "Add an event to the calendar",
         {"title": _s(), "day": _s(), "hour": INT}, ("title", "day", "hour"),
         {"title": "title", "day": "weekday", "hour": "hour"},
         ("Add {title} to my calendar on {day} at {hour}:00.",
          "Schedule {title} for {day} at {hour}:00.",
          "Put {title} in the calendar, {day}, {hour}:00."),
         ("Block out {hour}:00 on {day} for {title}, would you?",
          "On {day} I have {title} starting {hour}:00; note it down in my diary.")),
    Tool("calculate_tip", "Work out a restaurant tip",
         {"bill_amount": NUM, "percent": INT}, ("bill_amount", "percent"),
         {"bill_amount": "money", "percent": "percent"},
         ("What is a {percent}% tip on {bill_amount}?",
          "Calculate a {percent} percent tip for a bill of {bill_amount}.",
          "Our bill is {bill_amount}. How much is {percent}% tip?"),
         ("Dinner came to {bill_amount} and I'd like to leave {percent} percent. What do I add?",
          "Figure out the gratuity: check total {bill_amount}, rate {percent}%.")),
    Tool("get_news", "Latest news headlines on a topic",
         {"topic": _s(["sports", "technology", "business", "science", "politics", "health"]),
          "count": INT}, ("topic",), {"topic": "enum", "count": "small_count"},
         ("Show me the latest {topic} news.",
          "Give me {count} {topic} headlines.",
          "What's new in {topic} today?"),
         ("Catch me up on {topic}, just the top {count} stories.",
          "Anything happening in the world of {topic}?")),
    Tool("play_music", "Play music by an artist",
         {"artist": _s()}, ("artist",), {"artist": "artist"},
         ("Play some music by {artist}.",
          "Put on {artist}.",
          "I want to listen to {artist}."),
         ("Queue up a few tracks from {artist} on the speaker.",
          "Music time! I'm in the mood for {artist}.")),
    Tool("convert_units", "Convert a measurement between units",
         {"value": NUM, "from_unit": _s(), "to_unit": _s()}, ("value", "from_unit", "to_unit"),
         {"value": "quantity", "from_unit": "unit", "to_unit": "unit"},
         ("Convert {value} {from_unit} to {to_unit}.",
          "How many {to_unit} is {value} {from_unit}?",
          "What is {value} {from_unit} in {to_unit}?"),
         ("My recipe says {value} {from_unit}; I only understand {to_unit}. Help?",
          "Express {value} {from_unit} using {to_unit} instead."),
         valid=lambda a: any(a["from_unit"] in g and a["to_unit"] in g and a["from_unit"] != a["to_unit"]
                             for g in UNIT_GROUPS)),
    Tool("get_directions", "Route between two places",
         {"origin": _s(), "destination": _s(), "mode": _s(["driving", "walking", "transit", "cycling"])},
         ("origin", "destination"), {"origin": "city", "destination": "city", "mode": "enum"},
         ("Get directions from {origin} to {destination}.",
          "How do I get from {origin} to {destination} by {mode}?",
          "Route from {origin} to {destination}, {mode}."),
         ("Plan the way for me, starting in {origin} and ending up in {destination}, going by {mode}.",
          "Navigate me to {destination}; I'm setting off from {origin}."),
         valid=lambda a: a["origin"] != a["destination"]),
    Tool("define_word", "Dictionary definition of a word",
         {"word": _s()}, ("word",), {"word": "word"},
         ("Define {word}.",
          "What does {word} mean?",
          "Look up the word {word}."),
         ("I keep seeing '{word}' in this book, what's the meaning?",
          "Explain the dictionary sense of {word} to me.")),
    Tool("add_todo", "Add a task to the to-do list",
         {"task": _s(), "priority": _s(["low", "medium", "high"])}, ("task",),
         {"task": "task", "priority": "enum"},
         ("Add {task} to my to-do list.",
          "New task: {task}, {priority} priority.",
          "Remind me to {task}. Mark it {priority}."),
         ("Don't let me forget to {task}; it's {priority} on the list.",
          "Jot down that I have to {task}.")),
    Tool("check_flight_status", "Status of a flight",
         {"flight_number": _s()}, ("flight_number",), {"flight_number": "flight"},
         ("Is flight {flight_number} on time?",
          "What's the status of {flight_number}?",
          "Check flight {flight_number}."),
         ("My sister lands on {flight_number} later; any delays?",
          "Has {flight_number} departed yet, or is it delayed?")),
    Tool("get_country_info", "Facts about a country",
         {"country": _s(), "field": _s(["capital", "population", "currency", "language"])},
         ("country", "field"), {"country": "country", "field": "enum"},
         ("What is the {field} of {country}?",
          "Tell me the {field} of {country}.",
          "{country}: what's its {field}?"),
         ("For my geography homework I need {country}'s {field}.",
          "Quiz prep: name the {field} for {country}.")),
)

TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS}


def compact_json(value: Any) -> str:
    """Compact JSON with sorted keys: the exact form of tool schemas and of the gold reply."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _display(value: Any) -> Any:
    """How a value is written in the request: money with 2 decimals, everything else as is."""
    return f"{value:.2f}" if isinstance(value, float) else value


def _sample_value(tool: Tool, name: str, rng: random.Random, split: str) -> Any:
    kind = tool.kinds[name]
    if kind == "enum":
        return rng.choice(tool.properties[name]["enum"])
    if kind in SHARED_CHOICES:
        return rng.choice(SHARED_CHOICES[kind])
    return POOLS[kind].sample(rng, split)


def sample_arguments(tool: Tool, names: list[str], rng: random.Random, split: str) -> dict[str, Any]:
    """Values for the arguments ``names`` of ``tool``, drawn from ``split``'s half of each pool."""
    for _ in range(100):
        args = {name: _sample_value(tool, name, rng, split) for name in names}
        if tool.valid(args):
            return args
    raise ValueError(f"tool {tool.name!r}: could not sample valid arguments for {names}; check `valid`")


def system_prompt(tools: list[Tool]) -> str:
    # Schemas keep their natural key order (name, description, parameters), which reads better.
    schemas = (json.dumps(tool.schema(), separators=(",", ":"), ensure_ascii=False) for tool in tools)
    return "\n".join([SYSTEM_HEAD, *schemas, SYSTEM_TAIL])


def tools_in_prompt(system: str) -> list[str]:
    """The tool names listed in a system prompt made by :func:`system_prompt`."""
    return [json.loads(line)["name"] for line in system.splitlines() if line.startswith("{")]


def make_example(tool: Tool, rng: random.Random, split: str) -> tuple[list[dict[str, str]], dict]:
    """One conversation (system, human, gpt) and its reference call."""
    template = rng.choice(tool.templates(split))
    names = template_fields(template)
    args = sample_arguments(tool, names, rng, split)
    request = template.format(**{name: _display(value) for name, value in args.items()})
    distractors = rng.sample([t for t in TOOLS if t.name != tool.name], 3)
    if sum(len(json.dumps(t.schema())) for t in [tool, *distractors]) > MAX_SCHEMA_CHARS:
        distractors = distractors[:2]  # keeps every example well under 350 SmolLM2 tokens
    listed = [tool, *distractors]
    rng.shuffle(listed)
    call = {"name": tool.name, "arguments": args}
    return turns(request, compact_json(call), system=system_prompt(listed)), call


def build_split(split: str, count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` rows of ``split``; tools cycle so every tool gets an equal share; no duplicate request."""
    rng = random.Random(f"{seed}:{split}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(count * 50):
        if len(rows) == count:
            return rows
        tool = TOOLS[len(rows) % len(TOOLS)]
        conversation, call = make_example(tool, rng, split)
        if conversation[1]["value"] in seen:
            continue
        seen.add(conversation[1]["value"])
        row = chat_row(DATASET, split, len(rows), conversation, call)
        check_chat_row(row, DATASET)
        rows.append(row)
    if len(rows) < count:
        raise ValueError(f"{DATASET}/{split}: only {len(rows)} distinct requests of {count} "
                         f"(stuck on tool {TOOLS[len(rows) % len(TOOLS)].name!r}); "
                         "add templates or pool values")
    return rows


def generate(out_dir: Path) -> dict[str, int]:
    """Write ``<out_dir>/function_calling/{train,test}.jsonl``; returns the row count per split."""
    return write_splits(out_dir, DATASET, build_split, COUNTS)
