"""General assistant conversations written by the labkit project (the source of ``general``).

Each entry is ``C(topic, human, gpt, [human, gpt, ...], system=...)``: messages alternate, starting
with the user. Replies are deliberately short (1-5 sentences, under 120 words) because a 135M model
is trained on them on a CPU.

Long on purpose: the file is the dataset's text (one entry per conversation), not code to split.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Conversation:
    topic: str
    messages: tuple[str, ...]
    system: str | None = None


def C(topic: str, *messages: str, system: str | None = None) -> Conversation:  # noqa: N802 (short on purpose)
    return Conversation(topic, messages, system)


HELPFUL = "You are a helpful assistant."
CONCISE = "You are a concise assistant. Answer in one or two sentences."
TUTOR = "You are a patient tutor who explains things simply to beginners."
CODER = "You are a helpful programming assistant."
WRITER = "You are a friendly writing assistant."

_EXPLANATIONS = (
    # ---- science explanations -------------------------------------------------------------------
    C("science", "Why is the sky blue?",
      "Sunlight contains all colours, and as it passes through the air, the short blue wavelengths are "
      "scattered by gas molecules much more than the longer red ones. That scattered blue light reaches "
      "our eyes from every direction, so the whole sky looks blue."),
    C("science", "What causes the seasons on Earth?",
      "The seasons are caused by the tilt of Earth's axis, about 23.5 degrees. As Earth orbits the Sun, "
      "each hemisphere takes turns leaning towards the Sun, getting more direct sunlight and longer days "
      "in summer. It is not because Earth gets closer to the Sun."),
    C("science", "How do plants make their food?",
      "Plants make food by photosynthesis. Their leaves capture sunlight with chlorophyll and use that "
      "energy to turn carbon dioxide from the air and water from the soil into glucose, releasing oxygen "
      "as a by-product.", system=TUTOR),
    C("science", "What is the difference between weather and climate?",
      "Weather is the state of the atmosphere at a particular time and place, such as rain this "
      "afternoon. Climate is the average pattern of weather in a region over many years, usually thirty "
      "or more."),
    C("science", "Why does ice float on water?",
      "Ice is less dense than liquid water. When water freezes, its molecules lock into an open "
      "crystal structure held by hydrogen bonds, which takes up more space, so ice floats."),
    C("science", "What is an atom?",
      "An atom is the smallest unit of a chemical element. It has a tiny nucleus of protons and "
      "neutrons, surrounded by electrons. The number of protons decides which element it is.",
      "And what is a molecule?",
      "A molecule is two or more atoms held together by chemical bonds. For example, a water molecule "
      "is two hydrogen atoms bonded to one oxygen atom, written H2O."),
    C("science", "How does a vaccine work?",
      "A vaccine shows your immune system a harmless version or piece of a germ. Your body learns to "
      "recognise it and makes antibodies and memory cells, so if the real germ arrives later, the "
      "immune system can fight it off quickly."),
    C("science", "Why do we have day and night?",
      "Earth spins on its axis about once every 24 hours. The side facing the Sun has day, and the side "
      "facing away has night."),
    C("science", "What is gravity?",
      "Gravity is the force of attraction between things that have mass. It keeps us on the ground, "
      "holds the Moon in orbit around Earth and keeps Earth in orbit around the Sun. The more massive "
      "and closer two objects are, the stronger the pull.", system=CONCISE),
    C("science", "How do bees make honey?",
      "Bees collect nectar from flowers and carry it back to the hive. There they pass it between "
      "workers, adding enzymes, and fan it with their wings to evaporate water. When it is thick enough "
      "they seal it in wax cells as honey."),
    C("science", "What is DNA?",
      "DNA, or deoxyribonucleic acid, is the molecule that carries genetic instructions in living "
      "things. It is shaped like a twisted ladder, a double helix, and the order of its four bases "
      "(A, T, C and G) encodes the information used to build and run the organism."),
    C("science", "Why does the Moon change shape?",
      "The Moon does not really change shape. As it orbits Earth, we see different amounts of its "
      "sunlit half, which gives the phases from new moon to full moon and back in about 29.5 days.",
      "How long is it between two full moons?",
      "About 29.5 days, which is one full cycle of phases, called a synodic month."),
    C("science", "What is the speed of light?",
      "In a vacuum, light travels at about 299,792 kilometres per second, roughly 300,000 km/s. At that "
      "speed, sunlight takes a little over eight minutes to reach Earth."),
    C("science", "What is the greenhouse effect?",
      "The greenhouse effect is the warming of Earth's surface by gases such as carbon dioxide, methane "
      "and water vapour. They let sunlight in but absorb some of the heat that Earth radiates back, "
      "keeping the planet warmer than it would otherwise be. Adding more of these gases strengthens the "
      "effect and warms the climate."),
    C("science", "How do magnets work?",
      "In a magnet, the tiny magnetic fields of many electrons line up in the same direction and add "
      "together into one strong field. That field attracts iron and other magnetic metals. Opposite poles "
      "attract, while like poles repel each other."),
    C("science", "Why do leaves change colour in autumn?",
      "In autumn, trees stop making chlorophyll, the green pigment in leaves. As it breaks down, yellow "
      "and orange pigments that were there all along become visible, and some trees also make red "
      "pigments."),
    C("science", "What is evaporation?",
      "Evaporation is when a liquid turns into a gas at its surface, below its boiling point. A puddle "
      "drying in the sun is a good example: water molecules gain enough energy to escape into the air "
      "as water vapour.", system=TUTOR),
    C("science", "What is the largest planet in our solar system?",
      "Jupiter is the largest planet. It is a gas giant more than eleven times wider than Earth, and its "
      "mass is more than twice that of all the other planets combined.",
      "Does it have moons?",
      "Yes, Jupiter has dozens of known moons. The four largest, Io, Europa, Ganymede and Callisto, were "
      "discovered by Galileo in 1610, and Ganymede is the largest moon in the solar system."),
    C("science", "Why do we sweat?",
      "Sweating cools the body. When sweat evaporates from your skin, it takes heat with it, which helps "
      "keep your body temperature near 37 degrees Celsius during exercise or hot weather."),
    C("science", "What is a black hole?",
      "A black hole is a region of space where gravity is so strong that nothing, not even light, can "
      "escape. Many form when a very massive star collapses at the end of its life."),
    C("science", "How does sound travel?",
      "Sound is a vibration that travels as a wave through a medium such as air, water or solids. The "
      "vibrating object pushes nearby particles, which push their neighbours, passing the wave along. "
      "That is why sound cannot travel through the vacuum of space."),
    C("science", "What is the boiling point of water?",
      "At sea level, pure water boils at 100 degrees Celsius, or 212 degrees Fahrenheit. At higher "
      "altitudes the air pressure is lower, so water boils at a lower temperature.", system=CONCISE),
    C("science", "What does a red blood cell do?",
      "Red blood cells carry oxygen from the lungs to the rest of the body. They contain haemoglobin, a "
      "protein that binds oxygen, and they also help carry carbon dioxide back to the lungs."),
    C("science", "What is erosion?",
      "Erosion is the wearing away and moving of rock and soil by water, wind, ice or gravity. Rivers "
      "carving valleys and waves wearing down cliffs are examples."),
    C("science", "How are rainbows formed?",
      "A rainbow forms when sunlight enters raindrops, bends, reflects off the back of the drop and "
      "bends again as it leaves. Each colour bends by a slightly different amount, so white light is "
      "spread into a band of colours. You see one when the Sun is behind you and rain is in front."),

    # ---- definitions -----------------------------------------------------------------------------
    C("definitions", "What does 'photosynthesis' mean?",
      "Photosynthesis is the process plants, algae and some bacteria use to turn light energy, water and "
      "carbon dioxide into sugar and oxygen."),
    C("definitions", "Define inflation.",
      "Inflation is the general rise in prices over time, which means each unit of money buys less than "
      "before. It is usually measured as a yearly percentage change in a price index."),
    C("definitions", "What is a metaphor?",
      "A metaphor describes something by saying it is something else, to suggest a likeness. For "
      "example, 'time is a thief' suggests that time takes things from us.",
      "How is that different from a simile?",
      "A simile makes the comparison openly with 'like' or 'as', for example 'as brave as a lion'. A "
      "metaphor states it directly, 'he is a lion in battle'."),
    C("definitions", "What is an algorithm?",
      "An algorithm is a finite list of clear steps for solving a problem or doing a task. A recipe is "
      "an everyday example; in computing, sorting a list of numbers is done with an algorithm."),
    C("definitions", "What does 'empathy' mean?",
      "Empathy is the ability to understand and share the feelings of another person, to imagine how "
      "something feels from their point of view."),
    C("definitions", "What is a noun?",
      "A noun is a word that names a person, place, thing or idea, such as 'teacher', 'London', 'chair' "
      "or 'freedom'.", system=TUTOR),
    C("definitions", "What is a democracy?",
      "A democracy is a system of government in which power belongs to the people, who usually choose "
      "their leaders and laws through free elections."),
    C("definitions", "What is compound interest?",
      "Compound interest is interest calculated on both the original amount and the interest already "
      "added. Because the interest itself earns interest, savings grow faster over time than with "
      "simple interest."),
    C("definitions", "What does 'biodiversity' mean?",
      "Biodiversity is the variety of life in a place: the different species, the genetic differences "
      "within them and the range of ecosystems they form."),
    C("definitions", "What is a prime number?",
      "A prime number is a whole number greater than 1 whose only divisors are 1 and itself. The first "
      "few are 2, 3, 5, 7, 11 and 13.",
      "Is 1 a prime number?",
      "No. By definition a prime must be greater than 1, so 1 is neither prime nor composite."),
    C("definitions", "What is a hypothesis?",
      "A hypothesis is a testable explanation or prediction that a scientist proposes before doing an "
      "experiment. The experiment then supports or contradicts it."),
    C("definitions", "What does 'procrastination' mean?",
      "Procrastination is putting off tasks you need to do, often by doing easier or more pleasant things "
      "instead, even though you know the delay may cause problems."),
    C("definitions", "What is an ecosystem?",
      "An ecosystem is a community of living things, such as plants, animals and microbes, together with "
      "their physical environment, all interacting as a system. A pond and a forest are examples."),
    C("definitions", "What is a budget?",
      "A budget is a plan for how you will spend and save money over a period, based on your expected "
      "income and expenses.", system=CONCISE),
    C("definitions", "What is an API?",
      "An API, or application programming interface, is a set of rules that lets one program ask another "
      "for data or services. For example, a weather app uses a weather service's API to fetch forecasts."),
    C("definitions", "What does 'renewable energy' mean?",
      "Renewable energy comes from sources that are naturally replenished, such as sunlight, wind, "
      "flowing water and geothermal heat, unlike coal, oil and gas, which run out."),
)

_HOW_TO = (
    C("how-to", "How do I boil an egg?",
      "Put the egg in a pan, cover it with cold water and bring it to the boil. Then lower the heat and "
      "simmer for about 6 minutes for a soft yolk or 9 to 10 minutes for hard-boiled. Cool it in cold "
      "water before peeling."),
    C("how-to", "How can I remove a coffee stain from a shirt?",
      "Act quickly: blot the stain, then rinse it from the back with cold water. Rub in a little liquid "
      "detergent, leave it for a few minutes and wash as usual. Check the stain is gone before using a "
      "dryer, because heat can set it."),
    C("how-to", "How do I change a flat tyre on a bicycle?",
      "Remove the wheel, then use tyre levers to lift one side of the tyre off the rim and pull out the "
      "inner tube. Find the puncture, check the tyre for anything sharp, and fit a new or patched tube. "
      "Push the tyre back onto the rim, inflate it to the pressure printed on the tyre and refit the "
      "wheel.",
      "What if I don't have tyre levers?",
      "You can often push the tyre off by hand after letting all the air out and squeezing the tyre "
      "into the middle of the rim. Avoid screwdrivers or knives, since they can pinch the tube or "
      "damage the rim."),
    C("how-to", "How do I make a cup of tea?",
      "Boil fresh water, pour it over a tea bag in a cup and let it steep for 3 to 5 minutes. Remove "
      "the bag and add milk, sugar or lemon if you like."),
    C("how-to", "How can I fall asleep faster?",
      "Keep a regular bedtime, and avoid caffeine late in the day and screens for the last hour before "
      "bed. A cool, dark, quiet room helps. If you cannot sleep after about twenty minutes, get up and do "
      "something calm until you feel sleepy.", system=HELPFUL),
    C("how-to", "How do I start running as a beginner?",
      "Start with walk-run intervals, for example one minute of running and two of walking, for about "
      "twenty minutes, three times a week. Increase the running parts gradually over several weeks. Wear "
      "comfortable shoes and keep a pace at which you can still talk.",
      "How do I avoid getting injured?",
      "Build up slowly, increasing your weekly distance by no more than about ten percent. Take rest "
      "days, warm up with a few minutes of walking, and stop if you feel sharp pain rather than normal "
      "tiredness."),
    C("how-to", "How do I take a screenshot on Windows?",
      "Press Windows key + Shift + S to open the snipping tool and select an area; the image is copied "
      "to the clipboard. Pressing the Print Screen key copies the whole screen."),
    C("how-to", "How do I keep basil alive indoors?",
      "Put basil on a sunny windowsill with at least six hours of light a day. Water when the top of the "
      "soil feels dry, and pinch off the top leaves and flower buds so the plant grows bushier."),
    C("how-to", "How should I prepare for a job interview?",
      "Research the company and the role, and prepare short examples from your experience that show the "
      "skills they ask for. Practise answering common questions aloud, and prepare two or three questions "
      "of your own. Plan your route so you arrive a little early."),
    C("how-to", "How do I write a good email subject line?",
      "Make it short and specific, so the reader knows what the email is about and what you need. For "
      "example, 'Approval needed: budget for March event' is better than 'Question'."),
    C("how-to", "How do I clean a cast-iron pan?",
      "Wash it while warm with hot water and a brush or scraper; a little soap is fine. Dry it "
      "completely, ideally on a warm hob, then rub in a very thin layer of oil to protect it from rust."),
    C("how-to", "How can I learn a new language faster?",
      "Practise a little every day rather than a lot once a week. Learn the most common words first, "
      "listen to and read things you enjoy in that language, and speak from early on, even with "
      "mistakes. Spaced-repetition flashcards help new words stick."),
    C("how-to", "How do I save money on groceries?",
      "Plan meals for the week and shop with a list. Compare unit prices, buy store brands, and cook "
      "larger batches to use leftovers. Avoid shopping when you are hungry."),
    C("how-to", "How do I set up a strong password?",
      "Use a long passphrase of at least three or four random words, and a different one for every "
      "account. A password manager can create and remember them for you, and turning on two-factor "
      "authentication adds another layer of protection.", system=CONCISE),
    C("how-to", "How do I politely decline an invitation?",
      "Thank the person, say clearly that you can't make it, and keep the reason brief. For example: "
      "'Thanks so much for inviting me! I'm not able to come that evening, but I hope it's a great "
      "night.'"),
    C("how-to", "How can I improve my handwriting?",
      "Slow down and hold the pen loosely. Practise letter shapes for a few minutes each day, keeping the "
      "same slant and size, and compare with a model alphabet to spot letters that need work."),
    C("how-to", "How do I make a paper airplane?",
      "Fold a sheet of paper in half lengthwise and unfold it. Fold the two top corners to the centre "
      "line, then fold the new slanted edges to the centre again. Fold the plane in half along the middle "
      "and fold each side down to make the wings.",
      "How can I make it fly farther?",
      "Make the folds sharp and the wings even, and throw it gently and level rather than hard. Bending "
      "the back edges of the wings up slightly can help it glide instead of diving."),
    C("how-to", "How do I back up my phone photos?",
      "Turn on your phone's cloud backup, such as iCloud Photos or Google Photos, so pictures upload "
      "automatically over Wi-Fi. For a second copy, occasionally transfer them to a computer or an "
      "external drive."),
    C("how-to", "How do I start a compost heap?",
      "Choose a spot on bare soil and mix green material, such as vegetable scraps and grass cuttings, "
      "with brown material like dry leaves and cardboard. Keep it as damp as a wrung-out sponge and turn "
      "it every few weeks. Leave out meat, dairy and oily food."),
    C("how-to", "How do I calm down before a presentation?",
      "Prepare well and rehearse the opening aloud, since a confident start helps. Just before speaking, "
      "take a few slow breaths, breathing out for longer than you breathe in. Remember that the audience "
      "wants you to do well.", system=HELPFUL),
)

_WRITING = (
    C("writing", "Write a two-line poem about the sea.",
      "The sea rolls in with silver breath,\nand carries stories of the deep to shore."),
    C("writing", "Give me a catchy name for a bakery.",
      "How about 'Rise & Shine Bakery'? It hints at rising dough and fresh mornings. Other options: "
      "'The Golden Crust' or 'Flour Power'."),
    C("writing", "Write a short thank-you note to a teacher.",
      "Dear Ms Taylor, thank you for your patience and encouragement this year. Your lessons made me "
      "enjoy learning, and I will remember your class for a long time. With gratitude, Sam.",
      system=WRITER),
    C("writing", "Write a one-sentence story about a lost umbrella.",
      "The red umbrella waited at the bus stop for three rainy days, until a little girl opened it, "
      "laughed, and carried it home like a rescued pet."),
    C("writing", "Rewrite this more politely: 'Send me the report now.'",
      "Could you please send me the report when you have a moment? I'd like to review it today."),
    C("writing", "Suggest a title for an essay about climate change and farming.",
      "'Growing Under Pressure: How Climate Change Is Reshaping Farming' works well. A shorter option is "
      "'Farming in a Warming World'."),
    C("writing", "Write a haiku about autumn.",
      "Crisp leaves drift and spin,\ngolden light on quiet paths,\nthe year breathes out slow."),
    C("writing", "Help me start a birthday message for my grandmother.",
      "Here's an opening: 'Happy birthday, Grandma! Every year with you is a gift, and I'm so grateful "
      "for your stories, your cooking and your warm hugs.' You can add a favourite memory you share.",
      "Can you make it a bit funnier?",
      "Sure: 'Happy birthday, Grandma! You're not getting older, you're becoming a classic, like your "
      "famous apple pie. Thanks for always feeding me far too much!'", system=WRITER),
    C("writing", "Write a product description for a reusable water bottle.",
      "Stay refreshed wherever you go with this leak-proof stainless steel bottle. It keeps drinks cold "
      "for 24 hours or hot for 12, fits most cup holders and replaces hundreds of plastic bottles a "
      "year."),
    C("writing", "Make this sentence shorter: 'Due to the fact that it was raining, we made the decision "
      "to stay inside the house.'",
      "Because it was raining, we decided to stay inside."),
    C("writing", "Write an out-of-office reply.",
      "Thank you for your email. I'm out of the office until Monday 14 April with limited access to email. "
      "For urgent matters, please contact Alex Morgan at alex.morgan@example.com. I'll reply when I'm "
      "back."),
    C("writing", "Give me three opening lines for a mystery story.",
      "1. The clock in the hall had stopped at 3:17, and nobody in the house would admit to touching it.\n"
      "2. Every morning for a week, a single black feather appeared on Nora's doorstep.\n"
      "3. The letter arrived forty years late, and it was addressed to a man who was still alive."),
    C("writing", "Write a slogan for a city cycling campaign.",
      "'Pedal More, Worry Less: Ride the City!' A shorter alternative is 'Two Wheels, One Greener City.'"),
    C("writing", "Fix the grammar: 'Me and him goes to the park every days.'",
      "'He and I go to the park every day.'",
      "Why 'he and I' and not 'me and him'?",
      "They are the subject of the sentence, so the subject pronouns 'he' and 'I' are needed. Putting "
      "the other person first, 'he and I', is the usual polite order."),
    C("writing", "Write a short, friendly reminder to a colleague about a meeting tomorrow.",
      "Hi Jordan, just a quick reminder about our meeting tomorrow at 10:00 in Room 3. Let me know if the "
      "time no longer works for you. Thanks!"),
    C("writing", "Describe a sunset in one vivid sentence.",
      "The sun sank into the hills like a dropped coal, spilling orange and pink across the clouds until "
      "the whole sky seemed to glow from within."),
    C("writing", "Write a limerick about a cat.",
      "There once was a cat named McGraw,\nwho napped with one very soft paw\ndraped over his face,\nin "
      "a warm sunny place,\nand woke only for dinner, in awe."),
    C("writing", "Turn this into a formal sentence: 'We can't make it, sorry!'",
      "Unfortunately, we will be unable to attend. Please accept our apologies."),
)

_CODING = (
    C("coding", "How do I reverse a string in Python?",
      "Use slicing with a step of -1: `reversed_text = text[::-1]`. For example, `'hello'[::-1]` "
      "gives `'olleh'`.", system=CODER),
    C("coding", "What is the difference between a list and a tuple in Python?",
      "A list is mutable, so you can add, remove or change items, and it is written with square "
      "brackets. A tuple is immutable once created and uses parentheses. Tuples suit fixed collections "
      "and can be used as dictionary keys."),
    C("coding", "How do I read a text file line by line in Python?",
      "Open it with a `with` statement and loop over the file object:\n"
      "`with open('notes.txt') as f:`\n`    for line in f:`\n`        print(line.rstrip())`\n"
      "The file is closed automatically when the block ends.", system=CODER),
    C("coding", "What does HTML stand for?",
      "HTML stands for HyperText Markup Language. It is the standard language for structuring content on "
      "web pages, such as headings, paragraphs, links and images."),
    C("coding", "Write a Python function that checks if a number is even.",
      "`def is_even(n: int) -> bool:`\n`    return n % 2 == 0`\n"
      "It returns True when the remainder after dividing by 2 is zero.",
      "Can you make it work for a list of numbers?",
      "Use a list comprehension: `[n for n in numbers if n % 2 == 0]` returns the even numbers, or "
      "`[is_even(n) for n in numbers]` gives True or False for each one.", system=CODER),
    C("coding", "What is a variable in programming?",
      "A variable is a name that refers to a value stored in memory, so you can use and change it later. "
      "For example, `age = 30` stores 30 under the name `age`.", system=TUTOR),
    C("coding", "What is Git used for?",
      "Git is a version control system. It records the history of changes to files, lets you go back to "
      "earlier versions, and helps several people work on the same code using branches and merges."),
    C("coding", "How do I get the length of a list in Python?",
      "Use the built-in `len` function: `len([3, 5, 8])` returns 3."),
    C("coding", "What is a for loop?",
      "A for loop repeats a block of code once for each item in a sequence. In Python, "
      "`for name in ['Ana', 'Ben']: print(name)` prints each name in turn."),
    C("coding", "How do I remove duplicates from a list in Python but keep the order?",
      "Use `list(dict.fromkeys(items))`. Dictionaries keep insertion order and their keys are unique, so "
      "`list(dict.fromkeys([3, 1, 3, 2, 1]))` gives `[3, 1, 2]`."),
    C("coding", "What is the difference between == and = in Python?",
      "A single `=` assigns a value to a variable, as in `x = 5`. A double `==` compares two values and "
      "returns True or False, as in `x == 5`."),
    C("coding", "What does an SQL SELECT statement do?",
      "SELECT retrieves data from a database table. For example, `SELECT name, age FROM users WHERE age > "
      "18;` returns the names and ages of users older than 18.",
      "How do I sort the results?",
      "Add an ORDER BY clause: `SELECT name, age FROM users WHERE age > 18 ORDER BY age DESC;` sorts from "
      "oldest to youngest. Use ASC, or leave it out, for ascending order."),
    C("coding", "What is a bug in software?",
      "A bug is a mistake in a program that makes it behave in an unintended way, such as crashing or "
      "giving a wrong result. Finding and fixing bugs is called debugging."),
    C("coding", "How do I convert a string to an integer in Python?",
      "Use `int()`: `int('42')` returns the number 42. It raises a ValueError if the text is not a valid "
      "whole number, so wrap it in try/except when the input comes from users."),
    C("coding", "What is JSON?",
      "JSON (JavaScript Object Notation) is a lightweight text format for storing and exchanging data. "
      "It uses objects with key-value pairs in curly braces and lists in square brackets, for example "
      "`{\"name\": \"Ana\", \"age\": 31}`."),
    C("coding", "Why is my Python code giving an IndentationError?",
      "Python uses indentation to group code, so lines in the same block must be indented the same way. "
      "The error usually means a line has too many or too few spaces, or tabs and spaces are mixed. Use "
      "four spaces per level consistently.", system=CODER),
    C("coding", "What is recursion?",
      "Recursion is when a function calls itself to solve a smaller version of the same problem. It needs "
      "a base case that stops the calls. For example, factorial(n) can be computed as n * factorial(n - 1), "
      "with factorial(0) = 1.",
      "Is recursion always a good idea?",
      "Not always. It can be elegant for trees and divide-and-conquer problems, but deep recursion can use "
      "a lot of memory and hit recursion limits. A simple loop is often clearer and faster."),
    C("coding", "How do I make a comment in JavaScript?",
      "Use `//` for a single-line comment and `/* ... */` for a comment spanning several lines."),
    C("coding", "What is the difference between a compiler and an interpreter?",
      "A compiler translates a whole program into machine code before it runs, producing an executable. "
      "An interpreter reads and runs the program step by step at run time. Many languages combine both "
      "approaches."),
    C("coding", "How do I swap two variables in Python?",
      "Use tuple unpacking: `a, b = b, a`. No temporary variable is needed."),
)

_ADVICE = (
    C("advice", "I have an exam in a week and feel overwhelmed. What should I do?",
      "Break the material into small topics and assign each to a day, leaving the last day for review. "
      "Study in focused blocks of 25 to 50 minutes with short breaks, and test yourself with past "
      "questions instead of only rereading. Sleep well, since memory consolidates during sleep.",
      "What if I can't cover everything?",
      "Prioritise the topics that carry the most marks or come up most often, and make sure you know the "
      "basics of each one. A solid grasp of the core is worth more than a shaky pass over everything."),
    C("advice", "How can I be more productive when working from home?",
      "Keep a fixed start time and a separate work area if you can. Plan your top three tasks each "
      "morning, silence notifications while you focus, and take real breaks away from the screen."),
    C("advice", "My friend seems sad lately. How can I help?",
      "Reach out privately and say what you've noticed, kindly and without judging. Listen more than you "
      "talk, and ask how you can help. If they seem very low or mention self-harm, encourage them to "
      "speak to a doctor or a helpline, and help them make that contact.", system=HELPFUL),
    C("advice", "Should I buy a new or used car?",
      "A used car costs less and loses value more slowly, but may need more repairs; get it inspected "
      "and check its history. A new car has a warranty and the latest safety features but depreciates "
      "quickly in the first years. Your budget and how long you plan to keep it usually decide.",
      "I want to keep it for ten years. Does that change anything?",
      "Keeping a car for ten years spreads the early depreciation of a new car over a long time, so a "
      "new or nearly new model with a good reliability record can make sense. Whichever you choose, "
      "regular maintenance matters most."),
    C("advice", "How do I ask my manager for a raise?",
      "Pick a good moment, such as after a success or during a review, and ask for a meeting. Come with "
      "evidence: your achievements, extra responsibilities and typical pay for your role. State a "
      "specific figure, stay calm, and if the answer is no, ask what would be needed to get there."),
    C("advice", "How can I make friends in a new city?",
      "Join activities that meet regularly, such as a sports club, a class or volunteering, because "
      "seeing the same people often builds friendships. Say yes to invitations, and suggest coffee with "
      "people you get on with.",
      "I'm quite shy. Any tips?",
      "Start with activities that have a shared task, like a choir or a hiking group, so conversation "
      "comes naturally. Prepare a few easy questions, such as how someone got into the hobby, and "
      "remember that many others are also hoping to meet people."),
    C("advice", "How do I stop checking my phone so often?",
      "Turn off non-essential notifications, move distracting apps off your home screen, and keep the "
      "phone in another room while you work or sleep. Replacing the habit helps too, for example reading "
      "a few pages when you feel the urge."),
    C("advice", "What should I pack for a weekend hiking trip?",
      "Bring layers including a waterproof jacket, sturdy boots, a map and a charged phone, plenty of "
      "water, snacks and a small first-aid kit. Add a hat, sunscreen and a head torch, and tell someone "
      "your route.", system=CONCISE),
    C("advice", "How do I deal with a noisy neighbour?",
      "Start with a friendly conversation at a calm time; they may not realise how much noise carries. "
      "Suggest specific solutions, like quiet hours after 10 pm. If that fails, keep a record of the "
      "noise and contact your landlord or the local council."),
    C("advice", "How much water should I drink a day?",
      "Needs vary with body size, activity and climate, but many health bodies suggest roughly 1.5 to 2 "
      "litres of fluid a day for adults, more in hot weather or when exercising. Pale yellow urine is a "
      "simple sign that you are drinking enough."),
    C("advice", "I want to start saving money. Where do I begin?",
      "Track your spending for a month to see where your money goes. Then set a realistic goal and move a "
      "fixed amount into a separate savings account on payday, automatically if possible. An emergency "
      "fund of a few months' expenses is a good first target.",
      "Should I pay off my credit card first?",
      "Usually yes. Credit card interest is often much higher than what savings earn, so paying off the "
      "balance is like getting a high guaranteed return. It's still wise to keep a small emergency "
      "buffer while you do it."),
    C("advice", "How can I give better feedback to my team?",
      "Be specific and timely: describe the exact behaviour, its effect and what you'd like next time. "
      "Mention what went well as well as what to improve, and make it a conversation by asking for their "
      "view."),
    C("advice", "What's a good way to learn to cook?",
      "Start with a few simple dishes you enjoy, such as an omelette, a stir-fry and a pasta sauce, and "
      "cook them until they feel easy. Learn basic knife skills and how to season by tasting as you go. "
      "Then add one new recipe each week."),
    C("advice", "How do I choose a good book to read?",
      "Think about books you've loved before and look for similar authors or genres. Read the first "
      "few pages before committing, and ask friends or a librarian for recommendations. It's fine to "
      "stop a book you aren't enjoying."),
    C("advice", "How can I reduce stress?",
      "Regular exercise, enough sleep and time outdoors all lower stress. Short breathing exercises or a "
      "walk can help in the moment. Talking to someone you trust and breaking big problems into small "
      "steps also makes things feel more manageable.", system=HELPFUL),
)

_MATHS = (
    C("maths", "What is 15% of 80?",
      "15% of 80 is 0.15 x 80 = 12."),
    C("maths", "What is the area of a rectangle 7 m long and 4 m wide?",
      "Area = length x width = 7 x 4 = 28 square metres.",
      "And its perimeter?",
      "Perimeter = 2 x (7 + 4) = 22 metres."),
    C("maths", "What is the square root of 144?",
      "The square root of 144 is 12, because 12 x 12 = 144."),
    C("maths", "How do I convert a fraction to a percentage?",
      "Divide the top number by the bottom number, then multiply by 100. For example, 3/4 = 0.75, "
      "and 0.75 x 100 = 75%.", system=TUTOR),
    C("maths", "What is 3/4 plus 1/8?",
      "Write both with denominator 8: 3/4 = 6/8. Then 6/8 + 1/8 = 7/8."),
    C("maths", "If a train travels 180 km in 2 hours, what is its average speed?",
      "Average speed = distance / time = 180 / 2 = 90 km per hour."),
    C("maths", "What is the sum of the angles in a triangle?",
      "The interior angles of any triangle add up to 180 degrees."),
    C("maths", "Solve for x: 2x + 6 = 20.",
      "Subtract 6 from both sides: 2x = 14. Divide by 2: x = 7.",
      "How can I check the answer?",
      "Substitute it back: 2 x 7 + 6 = 14 + 6 = 20, which matches the right-hand side, so x = 7 is "
      "correct."),
    C("maths", "What is the mean of 4, 8, 10 and 14?",
      "Add them: 4 + 8 + 10 + 14 = 36. Divide by how many there are: 36 / 4 = 9. The mean is 9."),
    C("maths", "Is 91 a prime number?",
      "No. 91 = 7 x 13, so it has divisors other than 1 and itself."),
    C("maths", "What is 2 to the power of 10?",
      "2 to the power of 10 is 1024.", system=CONCISE),
    C("maths", "A shirt costs $40 and is 25% off. What is the sale price?",
      "25% of $40 is $10, so the sale price is $40 - $10 = $30."),
    C("maths", "How many minutes are in a day?",
      "There are 24 x 60 = 1,440 minutes in a day."),
    C("maths", "What is the circumference of a circle with radius 5 cm?",
      "Circumference = 2 x pi x r = 2 x 3.14159 x 5, which is about 31.4 cm."),
    C("maths", "What is the difference between mean and median?",
      "The mean is the sum of the values divided by how many there are. The median is the middle value "
      "when they are sorted. The median is less affected by extreme values.",
      "Can you give an example where they differ a lot?",
      "For the incomes 20, 22, 25, 27 and 300 (in thousands), the median is 25 but the mean is 78.8, "
      "because the single very large value pulls the mean up."),
    C("maths", "Round 3.14159 to two decimal places.",
      "3.14159 rounded to two decimal places is 3.14."),
    C("maths", "What is 12 x 12?",
      "12 x 12 = 144."),
    C("maths", "What is a right angle?",
      "A right angle is an angle of exactly 90 degrees, like the corner of a square."),
)

_COMPARISONS = (
    C("comparisons", "What is the difference between a virus and a bacterium?",
      "Bacteria are single-celled living organisms that can reproduce on their own, and many are "
      "harmless or helpful. Viruses are much smaller and can only reproduce inside the cells of a host. "
      "Antibiotics work against bacteria but not against viruses."),
    C("comparisons", "Coffee or tea: which has more caffeine?",
      "Per cup, brewed coffee usually has more caffeine, roughly 80 to 100 mg, compared with about 30 to "
      "50 mg for black tea. The exact amounts depend on how strong it is brewed."),
    C("comparisons", "What is the difference between a lake and a pond?",
      "There is no strict rule, but lakes are generally larger and deeper than ponds. In a pond, sunlight "
      "can usually reach the bottom across the whole area, so plants can grow throughout, while a lake "
      "has deep areas where light does not reach."),
    C("comparisons", "How is a crocodile different from an alligator?",
      "Alligators have a wide, U-shaped snout, while crocodiles have a narrower, V-shaped one. When a "
      "crocodile closes its mouth, its lower teeth still show. Crocodiles also tolerate salt water better "
      "and live in more parts of the world."),
    C("comparisons", "What's the difference between RAM and storage?",
      "RAM is fast, temporary memory that holds the programs and data in use right now, and it is "
      "cleared when the computer turns off. Storage, such as an SSD or hard drive, keeps files and "
      "programs permanently but is slower.",
      "So will more RAM make my computer faster?",
      "It helps if you often run many programs or large files at once and your RAM is filling up. If "
      "you rarely use all of it, extra RAM won't make much difference; a faster SSD or processor may "
      "matter more."),
    C("comparisons", "What is the difference between weather forecasts and climate projections?",
      "A weather forecast predicts the specific conditions over the next few days. A climate projection "
      "describes likely long-term average conditions decades ahead under different scenarios, not the "
      "weather on any particular day."),
    C("comparisons", "Is a tomato a fruit or a vegetable?",
      "Botanically, a tomato is a fruit because it develops from a flower and contains seeds. In cooking "
      "it is usually treated as a vegetable because it is savoury."),
    C("comparisons", "What's the difference between 'affect' and 'effect'?",
      "'Affect' is usually a verb meaning to influence: 'The rain affected the match.' 'Effect' is usually "
      "a noun meaning a result: 'The rain had an effect on the match.'", system=TUTOR),
    C("comparisons", "Electric cars versus petrol cars: what are the main trade-offs?",
      "Electric cars are cheaper to run, quieter and produce no exhaust emissions, but usually cost more "
      "to buy and need charging, which takes longer than refuelling. Petrol cars have a longer range per "
      "fill and refuel quickly, but cost more in fuel and pollute more."),
    C("comparisons", "What's the difference between a republic and a monarchy?",
      "In a monarchy the head of state is a king or queen who usually inherits the role. In a republic "
      "the head of state is chosen, for example elected, for a limited term. Many monarchies today are "
      "constitutional, with an elected government holding real power."),
    C("comparisons", "How does a hurricane differ from a tornado?",
      "A hurricane is a huge storm system hundreds of kilometres wide that forms over warm oceans and "
      "lasts for days. A tornado is a narrow spinning column of air, usually less than a kilometre "
      "wide, that forms from a thunderstorm and lasts minutes, but can have even stronger winds."),
    C("comparisons", "What's the difference between an LED and an incandescent bulb?",
      "An incandescent bulb makes light by heating a wire until it glows, wasting most energy as heat. An "
      "LED produces light from a semiconductor, uses about 75 to 90 percent less energy and lasts many "
      "times longer."),
)

_SUMMARIES = (
    C("summaries", "Summarise in one sentence: 'The town council met on Tuesday to discuss the new park. "
      "Residents asked for more trees and a playground. The council agreed to plant fifty trees this "
      "year and will consider the playground next spring.'",
      "The council agreed to plant fifty trees in the new park this year and will consider residents' "
      "request for a playground next spring."),
    C("summaries", "Give me a short summary of the story of Cinderella.",
      "Cinderella is a kind young woman mistreated by her stepmother and stepsisters. With help from a "
      "fairy godmother she attends a royal ball and wins the prince's heart, but must leave at midnight, "
      "losing a glass slipper. The prince searches for the woman it fits, finds Cinderella, and they "
      "marry."),
    C("summaries", "Summarise: 'Regular exercise improves heart health, strengthens muscles and bones, "
      "lifts mood and helps with sleep. Adults are advised to do at least 150 minutes of moderate "
      "activity a week, such as brisk walking, plus muscle-strengthening exercise twice a week.'",
      "Exercise benefits the heart, muscles, bones, mood and sleep; adults should aim for 150 minutes of "
      "moderate activity weekly plus strength training twice a week."),
    C("summaries", "What is the plot of Romeo and Juliet in brief?",
      "Romeo and Juliet, teenagers from two feuding families in Verona, fall in love and marry in secret. "
      "After Romeo kills Juliet's cousin in a fight and is banished, a plan to reunite them goes wrong: "
      "Romeo believes Juliet is dead and poisons himself, and Juliet, waking to find him dead, kills "
      "herself. Their deaths reconcile the families.",
      "Who wrote it?",
      "William Shakespeare wrote it, probably in the mid-1590s."),
    C("summaries", "Summarise this email in one line: 'Hi team, the office will be closed on Friday for "
      "maintenance. Please take your laptops home on Thursday and work remotely on Friday. Normal hours "
      "resume Monday.'",
      "The office is closed Friday for maintenance, so take laptops home Thursday and work remotely "
      "Friday."),
    C("summaries", "Briefly, what happened during the Apollo 11 mission?",
      "In July 1969, Apollo 11 carried Neil Armstrong, Buzz Aldrin and Michael Collins to the Moon. "
      "Armstrong and Aldrin landed in the lunar module and walked on the surface, while Collins orbited "
      "above. All three returned safely to Earth.", system=CONCISE),
    C("summaries", "Can you sum up the idea of supply and demand?",
      "When demand for something rises and supply stays the same, its price tends to rise; when supply "
      "rises and demand stays the same, the price tends to fall. The market price settles where the "
      "amount people want to buy matches the amount sellers offer."),
    C("summaries", "Summarise the water cycle in three steps.",
      "1. Evaporation: the Sun heats water, which rises as vapour. 2. Condensation: the vapour cools and "
      "forms clouds. 3. Precipitation: water falls as rain or snow and flows back to rivers, lakes and "
      "seas, where the cycle begins again.", system=TUTOR),
)

_HISTORY_GEOGRAPHY = (
    C("history", "Who was the first person to walk on the Moon?",
      "Neil Armstrong, on 20 July 1969, during NASA's Apollo 11 mission."),
    C("history", "When did World War II end?",
      "World War II ended in 1945: in Europe on 8 May, and in Asia when Japan surrendered, announced on "
      "15 August and formally signed on 2 September."),
    C("history", "Who invented the telephone?",
      "Alexander Graham Bell received the first US patent for the telephone in 1876, although other "
      "inventors, such as Elisha Gray and Antonio Meucci, worked on similar devices."),
    C("history", "What was the Renaissance?",
      "The Renaissance was a period of European cultural revival, roughly from the 14th to the 17th "
      "century, that began in Italy. It brought renewed interest in ancient Greek and Roman learning and "
      "great achievements in art, science and literature, by figures such as Leonardo da Vinci and "
      "Michelangelo.",
      "Why did it start in Italy?",
      "Italian city-states such as Florence and Venice were wealthy from trade, and rich patrons like the "
      "Medici family paid for art and scholarship. Italy also had many Roman ruins and texts close at "
      "hand, which inspired scholars."),
    C("history", "Why were the pyramids of Giza built?",
      "They were built as tombs for Egyptian pharaohs, around 4,500 years ago. The Great Pyramid was made "
      "for the pharaoh Khufu."),
    C("history", "What was the Industrial Revolution?",
      "The Industrial Revolution was the shift from hand production to machines and factories, starting "
      "in Britain in the late 18th century. Steam power, mechanised textile mills and railways "
      "transformed work, transport and where people lived."),
    C("geography", "What is the capital of Australia?",
      "The capital of Australia is Canberra, not Sydney as many people think.",
      "Why isn't it Sydney?",
      "When Australia federated in 1901, Sydney and Melbourne both wanted to be the capital. Canberra was "
      "chosen as a compromise and purpose-built between them, and Parliament moved there in 1927."),
    C("geography", "What is the longest river in the world?",
      "The Nile, at about 6,650 km, is usually listed as the longest, with the Amazon a close second. "
      "Some measurements put the Amazon slightly ahead, depending on where its source is taken to be."),
    C("geography", "How many continents are there?",
      "By the most common count there are seven: Africa, Antarctica, Asia, Australia (Oceania), Europe, "
      "North America and South America.", system=CONCISE),
    C("geography", "What is the highest mountain on Earth?",
      "Mount Everest, on the border of Nepal and China, is the highest above sea level at about 8,849 "
      "metres."),
    C("geography", "Which ocean is the largest?",
      "The Pacific Ocean is the largest and deepest ocean, covering about a third of Earth's surface."),
    C("geography", "What is the equator?",
      "The equator is an imaginary line around the middle of Earth, halfway between the North and South "
      "Poles, at 0 degrees latitude. It divides the planet into the Northern and Southern Hemispheres.",
      "Is it hot everywhere on the equator?",
      "It's warm at low altitudes, but not everywhere. High mountains on the equator, such as in Ecuador "
      "and Kenya, are cool and can even have snow at the top."),
    C("geography", "What is the largest desert in the world?",
      "If you count cold deserts, Antarctica is the largest, because a desert is defined by very low "
      "precipitation. The largest hot desert is the Sahara in North Africa."),
    C("history", "Who was Marie Curie?",
      "Marie Curie was a Polish-born French physicist and chemist who pioneered research on "
      "radioactivity. She discovered the elements polonium and radium and was the first person to win "
      "Nobel Prizes in two sciences, physics in 1903 and chemistry in 1911."),
)

_EVERYDAY = (
    C("everyday", "Hi! How are you?",
      "Hi! I'm doing well, thanks for asking. How can I help you today?",
      "I'm bored. Any ideas?",
      "You could try a short walk somewhere new, cook a recipe you've never made, start a puzzle or "
      "sketch something near you. Or pick a topic you're curious about and I can tell you about it.",
      "Tell me a fun fact.",
      "Octopuses have three hearts and blue blood. Two hearts pump blood through the gills, and the third "
      "pumps it around the rest of the body."),
    C("everyday", "What's a good quick dinner idea?",
      "A vegetable stir-fry is quick: fry sliced peppers, onion and any other vegetables on high heat, "
      "add soy sauce, garlic and ginger, and serve with rice or noodles. It takes about 20 minutes.",
      "I don't have soy sauce. What can I use instead?",
      "A little salt with a splash of Worcestershire sauce works, or use stock with a pinch of sugar. "
      "Lemon juice and chilli also add plenty of flavour."),
    C("everyday", "Can you recommend a board game for four adults?",
      "Ticket to Ride is a great choice: easy to learn, about an hour long and fun for four. If your group "
      "likes cooperation, try Pandemic, where everyone works together against the game."),
    C("everyday", "How long should I leave a turkey to rest after roasting?",
      "Rest a whole turkey for about 30 minutes, loosely covered with foil. This lets the juices settle "
      "so the meat stays moist when carved."),
    C("everyday", "What can I do on a rainy day with kids?",
      "Build a blanket fort, bake biscuits together, put on a puppet show or have an indoor treasure "
      "hunt with clues. Painting and board games are good calmer options."),
    C("everyday", "Tell me a joke.",
      "Why don't scientists trust atoms? Because they make up everything!",
      "Another one, please.",
      "What do you call a fish with no eyes? A fsh."),
    C("everyday", "What should I name my new puppy?",
      "It depends on its personality, but popular choices include Biscuit, Luna, Milo, Pepper and Scout. "
      "Short names with one or two syllables are easiest for a dog to recognise.",
      "She's small, fluffy and white.",
      "Then maybe Snowball, Cotton, Pearl or Marshmallow. Cloud would suit a fluffy white puppy too."),
    C("everyday", "Is it safe to eat raw cookie dough?",
      "It's better not to. Raw flour can carry harmful bacteria such as E. coli, and raw eggs can carry "
      "salmonella. Edible cookie dough made with heat-treated flour and no eggs is the safe option.",
      system=HELPFUL),
    C("everyday", "What time of year is best for seeing the Northern Lights?",
      "From roughly September to March, when nights in the far north are long and dark. Clear skies away "
      "from city lights give the best chance, in places such as northern Norway, Iceland, Finland or "
      "Canada."),
    C("everyday", "How do I keep cut flowers fresh longer?",
      "Trim the stems at an angle, remove leaves below the waterline and use a clean vase. Change the "
      "water every two days and keep the flowers away from direct sun and fruit, which gives off "
      "ripening gas."),
    C("everyday", "What's a good gift for a friend who likes cooking?",
      "A good chef's knife, an interesting spice set, a cookbook from a cuisine they love or a cooking "
      "class experience. A quality olive oil or a cast-iron pan are also welcome."),
    C("everyday", "Can you help me plan a picnic?",
      "Sure! Pick a shady spot and check the weather. Pack easy finger food such as sandwiches, fruit, "
      "cheese and crackers, plus water, a blanket, napkins and a bag for rubbish.",
      "What games could we play?",
      "Frisbee, a ball game like rounders, or a card game on the blanket. For quieter fun, try I spy or a "
      "nature scavenger hunt.",
      "Thanks, that's great!",
      "You're welcome! Have a lovely picnic."),
    C("everyday", "Good morning!",
      "Good morning! I hope your day is off to a great start. What can I do for you?"),
    C("everyday", "Thank you for your help.",
      "You're very welcome! Feel free to come back any time you have a question."),
    C("everyday", "What's the best way to store bread?",
      "Keep bread in a bread box or a paper bag at room temperature for a few days. The fridge makes it "
      "go stale faster; for longer storage, slice and freeze it, then toast slices straight from the "
      "freezer."),
)

_LANGUAGE = (
    C("language", "How do you say 'thank you' in Spanish?",
      "'Thank you' in Spanish is 'gracias'. To say 'thank you very much', use 'muchas gracias'."),
    C("language", "What does 'bonjour' mean?",
      "'Bonjour' is French for 'hello' or 'good day'. It's the standard polite greeting during the day.",
      "And how do I say goodbye?",
      "'Au revoir' is the usual way to say goodbye in French. 'Salut' works for both hello and bye "
      "between friends."),
    C("language", "What is the plural of 'mouse'?",
      "The plural is 'mice'. For computer mice, both 'mice' and 'mouses' are used, but 'mice' is more "
      "common."),
    C("language", "What's a synonym for 'happy'?",
      "Some synonyms are 'cheerful', 'joyful', 'content', 'glad' and 'delighted'."),
    C("language", "When should I use 'its' versus 'it's'?",
      "'It's' is short for 'it is' or 'it has', as in 'It's raining.' 'Its' shows possession, as in 'The "
      "dog wagged its tail.' A quick test: if you can replace it with 'it is', use 'it's'.",
      system=TUTOR),
    C("language", "What is an antonym of 'generous'?",
      "Antonyms of 'generous' include 'stingy', 'selfish' and 'mean'."),
    C("language", "What does the idiom 'break the ice' mean?",
      "To 'break the ice' means to say or do something that relieves tension and gets a conversation "
      "started, for example when people meet for the first time.",
      "Can you use it in a sentence?",
      "'At the start of the meeting, Priya broke the ice with a funny story about her commute.'"),
    C("language", "How do you say 'good night' in German?",
      "'Good night' in German is 'Gute Nacht'."),
    C("language", "What is a verb?",
      "A verb is a word that describes an action, state or occurrence, such as 'run', 'be' or 'happen'. "
      "Every complete sentence has at least one.",
      "Give me a sentence and point out the verbs.",
      "'Maya opened the window and felt the breeze.' The verbs are 'opened' and 'felt'."),
    C("language", "Which is correct: 'fewer people' or 'less people'?",
      "'Fewer people' is the standard form, because people are countable. Use 'less' with uncountable "
      "things, as in 'less water' or 'less time'."),
)

_MIXED_MULTI_TURN = (
    C("science", "Why do cats purr?",
      "Cats often purr when they are content, but also when stressed, hurt or giving birth, so it may "
      "help them calm themselves. The sound comes from rapid twitching of muscles in the larynx.",
      "Do big cats purr too?",
      "Cheetahs, pumas and some other smaller wild cats can purr. Lions and tigers, which can roar, do "
      "not purr in the same continuous way."),
    C("how-to", "How do I make pancakes?",
      "Whisk 100 g of flour, 2 eggs and 300 ml of milk with a pinch of salt into a smooth batter. Heat a "
      "lightly oiled pan, pour in a thin layer, cook for about a minute until golden underneath, then "
      "flip and cook the other side.",
      "Can I make them without eggs?",
      "Yes. Replace the eggs with a mashed ripe banana or two tablespoons of ground flaxseed mixed with "
      "six tablespoons of water, and add a teaspoon of baking powder to help them rise."),
    C("coding", "What is a function in programming?",
      "A function is a named block of code that performs a task. You can call it whenever you need that "
      "task done, often passing in inputs called arguments and getting back a result.",
      "Why are functions useful?",
      "They let you reuse code instead of repeating it, break a big program into small understandable "
      "pieces, and test each piece on its own.",
      "Show me a tiny example in Python.",
      "`def greet(name):`\n`    return 'Hello, ' + name`\nCalling `greet('Ana')` returns 'Hello, Ana'.",
      system=CODER),
    C("advice", "What's a healthy breakfast?",
      "Something with protein, fibre and a little healthy fat keeps you full: for example porridge with "
      "nuts and fruit, eggs on wholegrain toast, or plain yoghurt with berries.",
      "I don't have much time in the morning.",
      "Try overnight oats made the evening before, a banana with a handful of nuts, or wholegrain toast "
      "with peanut butter. Each takes under five minutes."),
    C("geography", "Which country has the most people?",
      "India has the largest population, having overtaken China in 2023. Each has more than 1.4 billion "
      "people.",
      "Which is bigger by area?",
      "China is larger by area, at about 9.6 million square kilometres, roughly three times the area of "
      "India."),
    C("writing", "Can you help me write a toast for my sister's wedding?",
      "Of course. Here's a start: 'For those who don't know me, I'm Emma's sister, which means I've had a "
      "front-row seat to her life, good haircuts and bad. Today I get to watch her marry someone who "
      "makes her laugh every day. Please raise your glasses to Emma and Tom!'",
      "Make it shorter, please.",
      "'I've known Emma all her life, and I've never seen her happier than today. To Emma and Tom: may "
      "your life together be full of laughter. Cheers!'", system=WRITER),
    C("maths", "How do I calculate a percentage increase?",
      "Subtract the old value from the new value, divide by the old value and multiply by 100. Going "
      "from 50 to 60 is (60 - 50) / 50 x 100 = 20%.",
      "What about a decrease from 80 to 60?",
      "(80 - 60) / 80 x 100 = 25%, so that is a 25% decrease."),
    C("science", "What are the three states of matter?",
      "The three common states are solid, liquid and gas. Solids keep their shape, liquids take the shape "
      "of their container, and gases spread out to fill any space.",
      "Are there any others?",
      "Yes. Plasma, a hot gas of charged particles found in stars and lightning, is often called the "
      "fourth state. Exotic states such as Bose-Einstein condensates appear near absolute zero."),
    C("everyday", "I need to wake up earlier. Any tips?",
      "Move your bedtime and alarm earlier by 15 minutes every few days instead of all at once. Get "
      "daylight soon after waking, and put the alarm across the room so you have to get up.",
      "What if I keep hitting snooze?",
      "Stop using the snooze button completely, since the broken sleep it gives makes you groggier. Plan "
      "something small you look forward to first thing, like a good coffee."),
    C("comparisons", "What's the difference between a cold and the flu?",
      "Both are viral infections, but flu usually comes on suddenly with fever, aches and exhaustion, "
      "while a cold is milder and mostly affects the nose and throat.",
      "When should I see a doctor?",
      "See a doctor if you have difficulty breathing, chest pain, a high fever that lasts more than a few "
      "days, or if you are in a high-risk group such as older adults, pregnant people or those with "
      "long-term conditions.", system=HELPFUL),
    C("definitions", "What is machine learning?",
      "Machine learning is a branch of artificial intelligence where computers learn patterns from data "
      "instead of following hand-written rules. For example, a spam filter learns from examples of spam "
      "and normal emails.",
      "How is it different from regular programming?",
      "In regular programming a person writes the rules and the computer applies them. In machine "
      "learning the person provides examples and the answers, and the algorithm works out the rules."),
    C("history", "Who built the Great Wall of China?",
      "It was built over many centuries by several Chinese dynasties. Qin Shi Huang joined earlier walls "
      "around 220 BC, and most of the wall standing today was built during the Ming dynasty.",
      "Can you see it from space?",
      "Not with the naked eye from orbit, despite the popular myth. It is long but very narrow, and its "
      "colour blends in with the land around it."),
)

CONVERSATIONS: tuple[Conversation, ...] = (
    _EXPLANATIONS + _HOW_TO + _WRITING + _CODING + _ADVICE + _MATHS + _COMPARISONS + _SUMMARIES
    + _HISTORY_GEOGRAPHY + _EVERYDAY + _LANGUAGE + _MIXED_MULTI_TURN
)
