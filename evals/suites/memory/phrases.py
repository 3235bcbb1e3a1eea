"""Vocabulary and phrasings for the synthetic memory dataset (pure data, no logic).

Statements (``S_*``) are what a user says; questions (``Q_*``) ask for the same fact in other
words, so that word overlap alone rarely finds the answer; acknowledgements (``ACK_*``) are
the assistant's replies and never repeat the answer itself. Placeholders are
``str.format`` fields filled from a user's profile (see ``evals.suites.memory.data``).
"""

from __future__ import annotations

# fmt: off

NAMES = [
    "Ana", "Bruno", "Chiara", "Dmitri", "Efua", "Farid", "Greta", "Hiroshi", "Ines", "Jonas",
    "Kavya", "Lucas", "Maren", "Nikos", "Oluwaseun", "Paloma",
]
PARTNERS = [
    "Tomasz", "Leila", "Rafferty", "Sunniva", "Mateo", "Yuki", "Odette", "Callum", "Priya",
    "Anselm", "Delphine", "Kofi", "Marisol", "Teodor", "Wren", "Ingrid",
]
SIBLINGS = [
    "Beatriz", "Magnus", "Rosalind", "Emeka", "Solveig", "Lorenzo", "Hanne", "Tariq", "Aurelie",
    "Declan", "Mireille", "Stellan", "Ximena", "Radek", "Oona", "Bastian",
]
KIDS = {
    "nephew": ["Otis", "Felix", "Arlo", "Jasper", "Ezra", "Milo", "Silas", "Rufus"],
    "niece": ["Luna", "Maisie", "Nell", "Ivy", "Clara", "Hazel", "Edie", "Tilly"],
}
FRIENDS = ["Dana", "Marco", "Keisha", "Lars", "Fatima", "Owen", "Mei", "Sven", "Rosa", "Idris"]
CITIES = [
    "Lisbon", "Rotterdam", "Lyon", "Montreal", "Osaka", "Valparaiso", "Tbilisi", "Ljubljana",
    "Cork", "Brisbane", "Wellington", "Tallinn", "Porto", "Krakow", "Edinburgh", "Seville",
    "Bergen", "Trieste", "Halifax", "Cusco", "Gdansk", "Bologna", "Malmo", "Leeds", "Austin",
    "Denver", "Pittsburgh", "Nagoya", "Tromso", "Antwerp", "Graz", "Aarhus", "Galway", "Hobart",
    "Quebec City", "Salzburg", "Bilbao", "Utrecht", "Vilnius", "Dunedin",
]
ROLES = [
    "nurse", "software engineer", "data analyst", "chemistry teacher", "paramedic", "architect",
    "UX designer", "accountant", "sous-chef", "veterinary technician", "civil engineer",
    "pharmacist", "journalist", "product manager", "physiotherapist", "electrician", "librarian",
    "marine biologist", "air traffic controller", "translator", "dental hygienist",
    "landscape gardener", "structural engineer", "museum curator",
]
EMPLOYERS = [
    "Halvorsen Logistics", "Brightwater Clinic", "Quillfeather Games", "Northbank Credit Union",
    "Ostrander & Pike", "Luma Robotics", "Greenleaf Pharmacy", "Tidewater Aquarium",
    "Kestrel Analytics", "Marlowe Architects", "Saffron Bistro", "Copperline Energy",
    "Juniper Health", "Atlas Freight", "Vantablue Media", "Fernhill Academy", "Orrery Labs",
    "Bramblewood Council", "Solenne Hotels", "Pinecrest Insurance", "Gannet Airways",
    "Thistle & Rowan Publishing", "Cobalt Ridge Mining", "Harbourside Museum",
]
PETS = {
    "dog": ["beagle", "corgi", "greyhound", "border collie", "dachshund", "labrador", "whippet"],
    "cat": ["tabby", "Maine Coon", "Siamese", "ragdoll", "tuxedo cat"],
    "rabbit": ["lop-eared rabbit", "Netherland dwarf rabbit"],
    "parrot": ["African grey parrot", "cockatiel"],
}
YOUNG = {"dog": "puppy", "cat": "kitten", "rabbit": "bunny", "parrot": "chick"}
PET_NAMES = [
    "Pixel", "Biscuit", "Mochi", "Juniper", "Pretzel", "Nacho", "Clementine", "Ziggy", "Waffles",
    "Pickles", "Sprocket", "Noodle", "Marzipan", "Tofu", "Gizmo", "Figaro", "Basil", "Olive",
    "Ludo", "Bramble", "Pepper", "Turnip", "Dumpling", "Pancake", "Socks", "Hobnob", "Truffle",
    "Kiwi", "Bagel", "Sushi", "Paprika", "Crumpet",
]
SPORTS = {
    "bouldering": "I've gotten really into bouldering, I'm at the climbing wall twice a week.",
    "trail running": "Did a 15k trail run through the hills this morning, muddy but glorious.",
    "open-water swimming": "Joined a group that swims in the lake every Sunday at 7, freezing!",
    "fencing": "Fencing club tonight again — I'm finally getting the hang of the riposte.",
    "rowing": "Our rowing crew was out on the river at dawn, my hands are all blisters.",
    "ultimate frisbee": "My ultimate frisbee team won the league match on Saturday!",
}
INSTRUMENTS = {
    "cello": "Bought a secondhand cello and I've started lessons on Thursday evenings.",
    "ukulele": "I've been teaching myself ukulele from videos, I can almost play three songs.",
    "jazz piano": "My jazz piano teacher says my left hand is finally loosening up.",
    "drums": "Got an electronic drum kit so the neighbours don't murder me, practising daily.",
    "banjo": "Picked up a banjo at a flea market and I'm learning clawhammer style.",
    "violin": "Back to violin lessons after fifteen years away, my scales are rusty.",
}
CRAFTS = {
    "pottery": "Signed up for a wheel-throwing class, my first bowl came out lopsided.",
    "woodworking": "Spent the whole weekend in the garage building a walnut side table.",
    "knitting": "I'm halfway through knitting a cable-knit sweater, it's taken me a month.",
    "bookbinding": "I hand-stitched my first notebook with a coptic binding last night.",
    "watercolour painting": "Been painting little watercolour landscapes every evening.",
    "embroidery": "Stitched a tiny fern onto my denim jacket, embroidery is so calming.",
}
CUISINES = {
    "Ethiopian": "injera with misir wot",
    "Sichuan": "mapo tofu and dan dan noodles",
    "Georgian": "khachapuri and khinkali",
    "Korean": "bibimbap and kimchi stew",
    "Lebanese": "fattoush and kibbeh",
    "Oaxacan": "mole negro and tlayudas",
    "Vietnamese": "bun cha and fresh spring rolls",
    "Peruvian": "ceviche and lomo saltado",
}
DISLIKES = ["coriander", "olives", "blue cheese", "mushrooms", "liquorice", "anchovies", "beetroot"]
ALLERGENS = ["peanuts", "shellfish", "penicillin", "bee stings", "sesame", "latex", "kiwi fruit"]
LANGUAGES = ["Portuguese", "Japanese", "Finnish", "Swahili", "Korean", "Dutch", "Greek", "Turkish"]
TRIPS = [
    "Patagonia", "Iceland", "Hokkaido", "the Azores", "Zanzibar", "the Dolomites", "Sri Lanka",
    "Nova Scotia", "Madeira", "Kyrgyzstan", "the Faroe Islands", "Tasmania",
]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]
RARE_SURNAMES = [
    "Przybylski", "Oyelaran", "Vuolanne", "Quarshie", "Haugland", "Zelenko", "Iwashita",
    "Thorvaldsen", "Ekwueme", "Abernethy", "Szczepanik", "Nwachukwu", "Kallistratos", "Lindqvist",
    "Mbatha", "Ferreira-Tamm", "Gruffudd", "Oyekunle", "Wojciechowski", "Achterberg", "Tsereteli",
    "Blomqvist", "Okafor", "Valdivieso",
]
RARE_COLLEAGUES = [
    "Thandiwe", "Gwenllian", "Anzhelika", "Eirik", "Ngozi", "Bartholomew", "Siobhan", "Yevgenia",
    "Ptolemy", "Cosima", "Radomir", "Ottilie", "Florentyna", "Leopoldo", "Hamish", "Zuleika",
    "Aoife", "Dagny", "Ignatius", "Marisela", "Temperance", "Oriel", "Casimir", "Philippa",
]
BOOKS = [
    ("The Cartographer's Silence", "Imre Valcourt"),
    ("Salt Over Basalt", "Nomvula Achterberg"),
    ("A Lantern for Wolves", "Tobiah Renwick"),
    ("The Glassblower's Ledger", "Ysolde Marchetti"),
    ("Nine Winters in Orlova", "Kasimir Dunleavy"),
    ("Tidewrack", "Philippa Oduya"),
    ("The Quiet Arithmetic", "Benedikt Sarrazin"),
    ("Under the Copper Hill", "Aiyana Sorensen"),
]
AIRLINES = ["LX", "TP", "KL", "NH", "FI", "SK", "AY", "EI"]
PARENT_JOBS = [
    "retired postman", "retired midwife", "bus driver", "headteacher", "tailor",
    "retired firefighter", "carpenter", "florist",
]

# ---- statements, questions and acknowledgements, by fact ----------------------------------

S_CITY0 = [
    "I've lived in {city0} for about six years now, it really feels like home.",
    "Greetings from rainy {city0}, where I have been stuck since I graduated, haha.",
    "My flat in {city0} is tiny but the neighbourhood is lovely.",
    "Life in {city0} is pretty good, although the rent keeps going up.",
]
S_MOVE = [
    "We finally did it — moved to {new} last weekend! Boxes everywhere.",
    "Big change: I packed up everything and relocated to {new}. New flat, new everything.",
    "First week living in {new} done. Still getting lost on the trams.",
    "The movers dropped the last boxes at our new place in {new} yesterday.",
]
ACK_MOVE = [
    "That's a big change! How are you settling in?",
    "Congratulations on the new place — moving is exhausting, so be kind to yourself.",
    "Exciting! Let me know if you want help finding things to do around there.",
]
Q_CITY_NOW = [
    "Which city am I based in these days?",
    "Where do I currently call home?",
    "Remind me, where do I live at the moment?",
]
Q_CITY_BEFORE = [
    "Where was I living before I moved to {new}?",
    "Which city did I leave when I went to {new}?",
]
Q_CITY_ALL = [
    "List every place I've lived since we started talking.",
    "Which cities have I called home over time?",
]
S_JOB0 = [
    "Long shift today. Being {a_role0} at {emp0} is rewarding but exhausting.",
    "I work as {a_role0} for {emp0}, have done for three years.",
    "Work at {emp0} was chaos today; such is the life of {a_role0}.",
]
S_JOB1 = [
    "Big news: I handed in my notice. I start as {a_role1} at {emp1} next month!",
    "First week at the new job done — I'm {a_role1} at {emp1} now and I love it.",
    "I accepted the offer! Starting at {emp1} as {a_role1} on Monday.",
]
ACK_JOB0 = [
    "That sounds demanding — make sure you get some rest.",
    "Some days at work are like that. Anything I can help with?",
]
ACK_JOB1 = ["Congratulations, that's a big step!", "Nice, that's great news about work."]
Q_ROLE_NOW = ["What do I do for a living these days?", "What's my profession right now?"]
Q_EMP_NOW = ["Which company pays my salary at the moment?", "Who is my current employer?"]
Q_EMP_BEFORE = [
    "Where did I work before I joined {emp1}?",
    "Which organisation was I with before {emp1}?",
]
S_PET0 = [
    "We adopted a {breed0} from the shelter, we named {pron0} {pet0}.",
    "Meet the newest family member: a {breed0} called {pet0}! Chaos ensued immediately.",
    "My {breed0} {pet0} chewed through the sofa cushion again, unbelievable.",
]
S_PET_DIED = [
    "Sad day. We had to say goodbye to {pet0} this morning, the vet said it was time.",
    "{pet0} passed away in {pron0_pos} sleep last night. The house feels so empty.",
]
ACK_PET_DIED = [
    "I'm so sorry for your loss. That's really hard.",
    "I'm sorry. Losing a companion hurts; take all the time you need.",
]
S_PET1 = [
    "We brought home a little {breed1} {young1} yesterday — {pron1} is called {pet1}.",
    "So... we got a new {young1}! A {breed1} named {pet1}. I think I'm ready.",
]
S_PET1_NAME = [  # the second message of a two-step adoption ({Pron1}: He or She)
    "{pet1}! A {breed1}, tiny and very loud.",
    "We went with {pet1}. {Pron1} is a {breed1} and already rules the house.",
]
ACK_PET = [
    "Oh, how lovely! Send pictures when you can.",
    "What a great companion to have around.",
    "That's wonderful news, enjoy the cuddles!",
]
Q_PET_NOW = ["What's my {species1} called?", "What name did we give our current {species1}?"]
Q_PET_BREED = ["What breed is my new {species1}?"]
Q_PET_LOST = [
    "What was the name of the pet I lost?",
    "Which animal of mine died, and what was its name?",
]
S_PARTNER = [
    "My {partner_rel} {partner} and I just celebrated five years together.",
    "{partner} surprised me with breakfast in bed — I'm lucky to have such a sweet "
    "{partner_rel}.",
    "Date night with {partner} tonight, my {partner_rel} booked somewhere fancy.",
]
Q_PARTNER = ["Who am I in a relationship with?", "What's my significant other's name?"]
S_SIB = [
    "My {sib_rel} {sib} is coming to stay with us next weekend.",
    "Had a long call with {sib}, my younger {sib_rel}; we talk every Sunday.",
]
Q_SIB = ["What's my {sib_rel}'s name?", "Who is my sibling?"]
S_KID = [
    "My {kid_rel} {kid} just turned {kid_age}, we had a dinosaur-themed party.",
    "Can't believe little {kid} is {kid_age} already — my {kid_rel} grows up so fast.",
]
Q_KID = ["How old is my {kid_rel} now?", "What age did my {kid_rel} reach at the last birthday?"]
S_PARENT = [
    "My {parent_rel} worked as a {parent_job} for thirty years.",
    "My {parent_rel} is a {parent_job}, still sharp as anything.",
]
Q_PARENT = ["What did I say my {parent_rel} does, or did, for work?"]
Q_SPORT = ["How do I usually stay active?", "What sport have I taken up?"]
Q_INSTRUMENT = ["Which musical instrument am I learning?", "What am I practising music on?"]
Q_CRAFT = [
    "What creative thing do I make with my hands in my spare time?",
    "Which craft hobby have I picked up?",
]
S_CUISINE = [
    "Honestly, {cuisine} is my favourite food in the world, I could eat {dish} every day.",
    "Craving {dish} again. Nothing beats {cuisine} cooking for me.",
]
Q_CUISINE = [
    "Which kind of cooking do I love most?",
    "If you booked my birthday dinner, which cuisine should it be?",
]
S_DISLIKE = [
    "I can't stand {dislike}, no matter how it's cooked.",
    "Please never suggest recipes with {dislike}, I genuinely hate it.",
]
Q_DISLIKE = ["Is there an ingredient I refuse to eat?", "Which food do I detest?"]
S_ALLERGY = [
    "Heads up, {allergen} make my throat close up, so I always carry an EpiPen.",
    "Ended up in A&E last year because of {allergen}. I have to be so careful.",
]
Q_ALLERGY = ["Do I have any allergies you should know about?", "What am I allergic to?"]
S_LANG = [
    "Day forty of my {lang} streak on the app! The grammar is brutal.",
    "I've started evening classes in {lang}, my teacher is very patient.",
]
Q_LANG = ["Which foreign language am I studying?", "What language have I been trying to learn?"]
S_TRIP = [
    "We're planning a trip to {trip} in {trip_month}, I can't wait.",
    "Booked it: {trip} in {trip_month}! Now to figure out what to pack.",
]
Q_TRIP = ["Where am I going on my next big holiday?", "Which destination did we book for travel?"]
Q_TRIP_WHEN = ["In which month is the {trip} trip?"]
S_DENTIST = [
    "My dentist appointment got moved to {dentist_date}, ugh.",
    "Reminder to self: dentist on {dentist_date} at 9.",
]
Q_DENTIST = ["When do I have to see the dentist?", "What's the date of my dental check-up?"]
S_WEDDING = [
    "{sib}'s wedding is on {wedding_date}, I'm giving a speech!",
    "My {sib_rel} is getting married on {wedding_date} and I have nothing to wear.",
]
Q_WEDDING = ["When is my {sib_rel}'s wedding?", "On what date does my sibling get married?"]
S_RACE = [
    "I signed up for the half marathon on {race_date}, training starts now.",
    "Race day is {race_date}: 21 kilometres, what was I thinking.",
]
Q_RACE = ["What's the date of the race I entered?", "When is my half marathon?"]
# Names and codes: several statements of the same shape per user, told apart only by a rare
# token, so that a question repeating the token is where term matching beats embeddings.
S_LANDLORD = [
    "Our new landlord, a Mr. {landlord}, finally fixed the boiler.",
    "Mr. {landlord} upstairs owns the building, he's strict about bins.",
]
S_DOCTOR = [
    "My GP, Dr. {doctor}, wants me to cut back on coffee.",
    "Saw Dr. {doctor} about my knee today; physio for six weeks.",
]
S_PLUMBER = [
    "The plumber, a Mr. {plumber}, finally sorted the leak under the sink.",
    "Mr. {plumber} came round about the radiator, it needs a new valve.",
]
Q_PERSON = ["What did I tell you about {who}?", "Remind me who {who} is.",
            "What's the story with {who}?"]
S_BOOKING = [
    "Hotel in {hotel_city} is booked, confirmation number {code}.",
    "Saving this here: booking reference {code} for the {hotel_city} hotel.",
]
S_RENTAL = ["Car rental sorted for the trip, reference {code2}.",
            "Picked the rental car option with free cancellation, booking {code2}."]
S_TICKETS = ["Got two concert tickets for next month, order number {code3}.",
             "Theatre tickets booked for my mum's birthday, order {code3}."]
Q_CODE = ["What is the reference {c} for?", "What was {c} again?"]
Q_HOTEL_CODE = ["What's my hotel confirmation code?"]
S_FLIGHT = [
    "My flight is {flight}, leaving at {flight_time}, so I need a taxi at 4.",
    "Checked in for {flight}, departure {flight_time}. Window seat!",
]
S_WORK_FLIGHT = ["Work trip to {work_city}: flight {flight2}, departing {flight2_time}.",
                 "Booked {flight2} for the conference in {work_city}, it leaves at "
                 "{flight2_time}."]
Q_FLIGHT_TIME = ["What time does {f} depart?", "When does {f} leave?"]
Q_WORK_FLIGHT = ["Which flight am I taking for the {work_city} work trip?"]
S_COLLEAGUE = [
    "{colleague} from the office is covering for me while I'm away.",
    "Had lunch with {colleague}, my new desk neighbour at work, very funny person.",
]
S_COLLEAGUE2 = ["{colleague2} in accounting keeps forgetting my name, it's a running joke.",
                "{colleague2} from the IT helpdesk fixed my laptop in five minutes flat."]
S_COLLEAGUE3 = ["My new manager, {colleague3}, approved my leave without any fuss.",
                "{colleague3}, my team lead now, wants weekly one-to-ones."]
Q_COLLEAGUE = ["Who is {who}?", "How do I know {who}?"]
S_BOOK = [
    "Reading '{book}' by {author} right now, I can't put it down.",
    "Just finished '{book}' — {author} writes the best endings.",
]
Q_BOOK = ["Who wrote the novel I was reading?", "What did I think of {author}'s book?"]

# ---- distractors --------------------------------------------------------------------------

SMALLTALK: list[tuple[str, str]] = [
    ("Can you explain how {concept} works in simple terms?",
     "Sure! In short, {concept} comes down to a few simple ideas; happy to go deeper."),
    ("What's a good {dish} recipe for a weeknight?",
     "A quick {dish} works well: keep it simple, prep everything first, season at the end."),
    ("I just finished watching '{show}', any recommendations for something similar?",
     "If you liked '{show}', try another slow-burn drama with strong characters."),
    ("It has been raining non-stop all week, I'm going stir crazy.",
     "Rainy weeks are rough. Maybe a cosy indoor project would help?"),
    ("So hot today I can barely think.", "Stay hydrated and keep the curtains closed!"),
    ("Help me write a polite email to {recipient} about {topic}.",
     "Here's a draft: 'Hi, I wanted to reach out about {topic}. Thanks for your patience.'"),
    ("What's the difference between {pair}?",
     "Good question! The short answer about {pair} is that they overlap but differ in purpose."),
    ("Any tips for sleeping better?",
     "Keep a regular schedule, dim the lights and skip late coffee."),
    ("How do I stop procrastinating?", "Try starting with just five minutes on the task."),
    ("Tell me a fun fact about {animal}.",
     "Here's one: {animal} are far cleverer than most people assume."),
    ("Can you summarise the plot of {classic}?",
     "Of course — {classic} follows its hero through a long struggle; want the detailed version?"),
    ("What should I get {gift_for} for their birthday?",
     "Something personal works best for {gift_for}: a book, a class or a nice plant."),
    ("How many {units}?",
     "Quick conversion coming up; it's easy to remember once you've used it a few times."),
    ("Long week. I'm so tired today.", "Sounds like you've earned a quiet evening."),
    ("How do you say 'good morning' in {any_lang}?",
     "In {any_lang} it's a short phrase; want pronunciation tips?"),
    ("My laptop fan is really loud, is that normal?", "Often it's dust; try cleaning the vents."),
    ("My friend {friend} just got a {other_breed} called {other_pet}, so cute.",
     "That sounds adorable!"),
    ("My coworker {friend} is moving to {other_city} next month.",
     "A big move for them! Hope they settle in well."),
    ("My neighbour works as a {other_role}, crazy hours.", "That job sounds demanding."),
    ("My cousin can't eat {other_allergen}, it makes family dinners tricky.",
     "That must take some planning."),
    ("Any ideas for a rainy Sunday?", "Museums, baking or a long film marathon!"),
    ("Should I repaint the living room green or grey?", "Sage green is very calming."),
    ("Is it worth buying an electric bike?", "For commuting, many people find it worth it."),
    ("What's a good stretch for lower back pain?", "Try gentle cat-cow stretches daily."),
]
FILL = {
    "concept": [
        "compound interest", "a heat pump", "a solar panel", "jet lag", "inflation",
        "photosynthesis", "a VPN", "a credit score", "noise cancelling", "a mortgage",
    ],
    "dish": [
        "risotto", "lentil soup", "stir-fry", "shakshuka", "chilli", "fish taco", "frittata",
        "ramen",
    ],
    "show": [
        "The Lighthouse Keepers", "Cold Harbour", "Paper Moons", "The Ninth Floor",
        "Saltwater Kings", "Borrowed Time",
    ],
    "recipient": ["my manager", "a client", "the school", "the building manager"],
    "topic": ["a late invoice", "rescheduling a meeting", "a broken heater", "a day off"],
    "pair": [
        "baking soda and baking powder", "weather and climate", "a latte and a flat white",
        "RAM and storage", "a virus and bacteria",
    ],
    "animal": ["octopuses", "crows", "axolotls", "sloths", "honeybees", "orcas"],
    "classic": ["Moby-Dick", "Pride and Prejudice", "The Odyssey", "Frankenstein"],
    "gift_for": ["a coworker", "my neighbour", "a friend who likes hiking"],
    "units": ["tablespoons are in a cup", "ounces are in a pound", "kilometres are in a mile"],
    "any_lang": ["Italian", "Hindi", "Polish", "Tagalog", "Icelandic"],
}
# fmt: on
