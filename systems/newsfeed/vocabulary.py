"""What the news feed's posts say: per-topic sentence templates, their fillers and hashtags, so
that a post reads as plain English of its topic (a pretrained sentence encoder embeds it later).

    python -c "from systems.newsfeed.vocabulary import *; print(compose('cooking', [0.3] * UNIFORMS_PER_POST))"

A post is [opener] sentence [follow-up] [closer]: the sentence is one of the topic's templates
with its {fields} filled from the topic's fillers (or the shared ones: {past}, {soon}, {who}),
the follow-up one of the topic's follow-ups, likewise filled. Three fields per template keep
accidental repeats rare at 10k posts a topic. Words are letters only (no digits, hyphens or
apostrophes), so a test can check every word against WORDS.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    templates: tuple[str, ...]  # sentences with {field}s
    follow_ups: tuple[str, ...]  # second sentences, likewise
    fillers: dict[str, tuple[str, ...]]  # field -> its choices
    hashtags: tuple[str, ...]  # without the '#'
    media_share: tuple[float, float, float]  # text, image, video


# Fields any topic's sentences may use.
SHARED_FILLERS = {
    "past": ("last night", "yesterday", "on Saturday", "this afternoon", "on Sunday", "this morning", "earlier today"),
    "soon": ("next week", "this weekend", "tomorrow", "on Friday", "next month", "tonight", "in the spring"),
    "who": (
        "my dad",
        "my sister",
        "my best friend",
        "my neighbour",
        "my partner",
        "my flatmate",
        "a colleague",
        "my brother",
        "my mum",
        "my cousin",
    ),
}

TOPICS = {
    "sports": Topic(
        (
            "What a {event} {past}, {player} scored twice before half time",
            "Still {feeling} after that {event}, {team} never gave up until the final whistle",
            "Watched the {event} with {who} at the pub {past}, {team} looked really sharp",
            "Can anyone explain why {player} was on the bench for the whole {event} {past}?",
            "{team} deserved the win {past}, the defence was solid and {player} was everywhere",
            "Tickets booked for the {event} {soon} with {who}, I am so {feeling} already",
            "That late goal from {player} in the {event} {past} will be replayed for years",
            "Our {event} went to extra time and {team} held on, {who} and I are {feeling}",
            "The referee had a shocker in the {event}, but {team} stayed calm and {player} led from the front",
            "Training with {team} {past}, trying to play more like {player} and feeling {feeling}",
        ),
        (
            "The atmosphere in the stadium was electric.",
            "My voice is gone from all the shouting.",
            "{who} has not stopped talking about it.",
            "We celebrated until late {past}.",
            "The league table looks very different now.",
            "Next up is the away game {soon}.",
            "Proud to support this club.",
            "The coach got every substitution right.",
        ),
        {
            "event": ("match", "game", "derby", "final", "semi final", "season opener", "cup tie", "rivalry game"),
            "player": (
                "the striker",
                "the captain",
                "the young winger",
                "the goalkeeper",
                "the veteran midfielder",
                "the new signing",
                "the point guard",
                "the rookie",
                "the left back",
                "our top scorer",
            ),
            "team": (
                "the home side",
                "our local club",
                "the national team",
                "the visitors",
                "the underdogs",
                "the champions",
                "my team",
                "the youth squad",
                "the reserve team",
            ),
            "feeling": ("nervous", "thrilled", "gutted", "proud", "speechless", "exhausted", "hopeful", "buzzing"),
        },
        ("football", "matchday", "goal", "sport", "fans", "highlights", "soccer", "basketball"),
        (0.35, 0.3, 0.35),
    ),
    "cooking": Topic(
        (
            "Tried a new recipe for {dish} with {ingredient} {past} and it {verdict}",
            "Made {dish} for {meal} {past}, the secret is {ingredient}",
            "Baking session with {who}, {dish} from scratch with {ingredient}, and honestly it {verdict}",
            "Does anyone have a good recipe for {dish}? Mine always needs more {ingredient}, says {who}",
            "{who} taught me to make {dish} with {ingredient}, still the best thing I cook for {meal}",
            "Meal prep is done, {dish} in boxes and plenty of {ingredient} for {meal} all week",
            "First attempt at {dish} for {meal} and it {verdict}, next time more {ingredient}",
            "Never underestimate what {ingredient} can do for a simple {dish} at {meal}",
            "Cooked {dish} for friends at {meal} {past} and it {verdict}",
            "The market had lovely produce {past}, so {dish} with {ingredient} for {meal} it is",
        ),
        (
            "The kitchen smells amazing.",
            "Recipe in the comments if anyone wants it.",
            "{who} already asked for seconds.",
            "Nothing left but crumbs.",
            "Cooking is my favourite way to relax.",
            "Going to make it again {soon}.",
            "The trick is to be patient with the oven.",
            "Fresh ingredients make all the difference.",
        ),
        {
            "dish": (
                "garlic butter pasta",
                "lemon chicken",
                "mushroom risotto",
                "banana bread",
                "vegetable curry",
                "beef stew",
                "apple pie",
                "tomato soup",
                "fish tacos",
                "pancakes",
                "chocolate cake",
                "fried rice",
                "sourdough bread",
                "lentil soup",
            ),
            "ingredient": (
                "fresh basil",
                "smoked paprika",
                "brown butter",
                "roasted garlic",
                "sea salt",
                "lime juice",
                "fresh ginger",
                "parmesan",
                "chili flakes",
                "honey",
                "fresh herbs",
            ),
            "meal": ("dinner", "lunch", "brunch", "breakfast", "the family dinner", "a picnic", "date night"),
            "verdict": (
                "turned out perfect",
                "was a total disaster",
                "disappeared in minutes",
                "tasted like a restaurant dish",
                "needs a bit more work",
                "was better than expected",
            ),
        },
        ("recipe", "foodie", "homecooking", "baking", "dinner", "yummy", "foodporn", "vegan"),
        (0.2, 0.6, 0.2),
    ),
    "travel": Topic(
        (
            "Just landed in {place} with {who} and already in love with {sight}",
            "Day three in {place}, we walked to {sight} {past} and ate far too much",
            "The {transport} to {place} was long but {sight} made it worth it",
            "Any tips for {place}? Going {soon} and really want to see {sight}",
            "Woke up early to catch {sight} {past}, {place} never disappoints",
            "Packing for {place} {soon}, first time taking the {transport} there",
            "Missing {place} already, especially the quiet mornings near {sight} with {who}",
            "Budget tip, the {transport} is the cheapest way to reach {sight} in {place}",
            "Got lost in {place} {past} and found {sight} by accident",
            "Back home after two weeks in {place}, {who} is still dreaming about {sight}",
        ),
        (
            "The weather was perfect the whole time.",
            "Already planning the next trip.",
            "Photos do not do it justice.",
            "The locals were so welcoming.",
            "{who} took the best pictures.",
            "My feet are killing me.",
            "Best coffee I have ever had.",
            "We are going back {soon}.",
        ),
        {
            "place": (
                "Lisbon",
                "the Scottish Highlands",
                "Kyoto",
                "a small island in Greece",
                "the Amalfi coast",
                "Patagonia",
                "Vancouver",
                "the Swiss Alps",
                "Marrakech",
                "Iceland",
                "Cape Town",
                "the Rocky Mountains",
                "Mexico City",
            ),
            "sight": (
                "the old town",
                "the harbour at sunset",
                "a hidden waterfall",
                "the night market",
                "the cathedral",
                "a tiny mountain village",
                "the coastal trail",
                "the local museum",
                "the view from the top",
                "the street food",
            ),
            "transport": ("train", "ferry", "road trip", "flight", "night bus", "bike tour"),
        },
        ("travel", "wanderlust", "adventure", "vacation", "explore", "travelgram", "roadtrip", "beach"),
        (0.1, 0.7, 0.2),
    ),
    "music": Topic(
        (
            "Saw {artist} play at {venue} {past}, the energy was unreal",
            "The {release} from {artist} has been on repeat since {past}",
            "Learning {instrument} again and trying to play some old {genre} songs for {who}",
            "Who else is going to the {genre} festival at {venue} {soon}?",
            "Nothing beats {genre} on {moment} with a cup of tea and {who}",
            "Just heard the {release} by {artist} on {moment}, the second track gave me chills",
            "Tickets for the {release} tour by {artist} sold out in minutes, so gutted I missed them",
            "Making a playlist of {genre} classics for {moment}, send me your favourites",
            "{artist} closed the night at {venue} with an encore nobody expected",
            "Dusted off my old {genre} records on {moment} and remembered why I love the {instrument}",
        ),
        (
            "Music really is the best medicine.",
            "Still humming the chorus.",
            "{who} sang along to every word.",
            "The sound was perfect.",
            "My ears are still ringing.",
            "Cannot wait to see them live again {soon}.",
            "This one is going on every playlist.",
            "The crowd was incredible.",
        ),
        {
            "artist": (
                "the band",
                "my favourite singer",
                "a local jazz trio",
                "the orchestra",
                "an indie band from my city",
                "the headliner",
                "a young rapper",
                "the choir",
                "an old punk band",
            ),
            "release": ("new album", "live session", "acoustic set", "latest single", "debut record", "remix"),
            "genre": ("jazz", "rock", "hip hop", "classical", "folk", "electronic", "soul", "country", "blues"),
            "venue": (
                "a tiny club",
                "the stadium",
                "the park",
                "an old theatre",
                "the festival",
                "a rooftop bar",
                "the town square",
            ),
            "instrument": ("guitar", "piano", "drums", "violin", "bass", "saxophone"),
            "moment": ("a rainy evening", "a lazy Sunday", "the long drive home", "a quiet morning", "a summer night"),
        },
        ("music", "livemusic", "concert", "newmusic", "playlist", "vinyl", "jazz", "guitar"),
        (0.3, 0.2, 0.5),
    ),
    "movies": Topic(
        (
            "Watched {film} at {screen} {past} and {aspect} {verdict}",
            "No spoilers, but {aspect} of {film} {verdict}, go see it with {who}",
            "Movie night with {who}, we picked {film} and everyone loved {aspect}",
            "Is it just me or {aspect} of {film} {verdict}?",
            "Binged a whole series {past} and {aspect} {verdict}, now I need something like {film}",
            "Finally saw {film} at {screen}, {aspect} alone is worth the ticket",
            "Going to {screen} {soon} to see {film}, who else has seen it?",
            "Rewatched {film} with {who} and noticed so many details in {aspect}",
            "Hot take, {aspect} of {film} {verdict} and I will not change my mind",
        ),
        (
            "Already want to watch it again.",
            "Bring tissues.",
            "The popcorn was terrible though.",
            "{who} fell asleep halfway through.",
            "Easily the film of the year.",
            "The critics got this one wrong.",
            "The sequel comes out {soon}.",
            "Stayed for every minute of the credits.",
        ),
        {
            "film": (
                "the new thriller",
                "that space drama",
                "the animated sequel",
                "a quiet indie film",
                "the superhero movie",
                "a classic western",
                "the horror film everyone talks about",
                "the historical epic",
                "the new documentary",
                "that romantic comedy",
            ),
            "aspect": (
                "the soundtrack",
                "the ending",
                "the lead performance",
                "the cinematography",
                "the plot twist",
                "the dialogue",
                "the opening scene",
            ),
            "verdict": (
                "blew me away",
                "fell completely flat",
                "was better than the book",
                "made me cry",
                "kept me guessing",
                "dragged on forever",
                "was pure magic",
            ),
            "screen": ("the cinema", "the open air screening", "a late show", "the old picture house"),
        },
        ("movies", "cinema", "film", "movienight", "filmreview", "netflix", "oscars"),
        (0.4, 0.3, 0.3),
    ),
    "technology": Topic(
        (
            "Two weeks with {device} and {feature} {verdict}",
            "Spent the whole evening {task} on {device}, why is this always harder than it looks?",
            "Does anyone else think {feature} on {device} {verdict}?",
            "Finally got around to {task} with {device}, should have done it years ago",
            "The latest update on {device} broke {feature}, so {task} is on hold for now",
            "Honest review of {device}, {feature} {verdict}",
            "Tips for {task}? I keep getting stuck with {device} and {feature}",
            "Our team shipped the new app {past}, and {feature} on {device} {verdict}",
            "Reading about artificial intelligence all weekend while {task} on {device}, fascinating stuff",
            "{who} convinced me to buy {device}, and {feature} {verdict}",
        ),
        (
            "Full review coming {soon}.",
            "The future is here.",
            "Technology should make life easier, not harder.",
            "{who} keeps asking me for help with it.",
            "Would I buy it again? Probably.",
            "Customer support was surprisingly helpful.",
            "Not sponsored, just impressed.",
            "Turning it off and on again fixed nothing.",
        ),
        {
            "device": (
                "my new laptop",
                "the latest phone",
                "a smart watch",
                "the home router",
                "my old tablet",
                "a mechanical keyboard",
                "the new headphones",
                "a tiny home server",
                "the electric scooter",
            ),
            "task": (
                "backing up my photos",
                "switching to a new browser",
                "setting up a smart home",
                "learning to code in the evenings",
                "building a small website",
                "cleaning up my inbox",
                "testing open source tools",
            ),
            "feature": (
                "the battery life",
                "the camera",
                "the screen",
                "the voice assistant",
                "the speaker",
                "the charging speed",
                "the keyboard",
            ),
            "verdict": (
                "is honestly impressive",
                "is a real letdown",
                "changed how I work",
                "needs a lot of work",
                "is better than expected",
                "is simply brilliant",
            ),
        },
        ("tech", "gadgets", "coding", "ai", "software", "innovation", "startup", "programming"),
        (0.6, 0.25, 0.15),
    ),
    "news": Topic(
        (
            "Breaking, {subject} {action}, more details expected {soon}",
            "According to {source}, {subject} {action}, and this is {opinion}",
            "Whatever your views, {subject} {action} and that is {opinion}",
            "Interesting piece in {source} about {subject}, well researched and {opinion}",
            "So {subject} {action} {past}. I honestly think this is {opinion}",
            "Town hall meeting {soon} about {subject}, it is {opinion}, so please come and share your views",
            "The debate about {subject} on {source} {past} was {opinion}",
            "Everyone is talking about how {subject} {action}, and I think it is {opinion}",
            "{who} sent me a story from {source} about {subject}, honestly {opinion}",
        ),
        (
            "Stay informed everyone.",
            "This affects all of us.",
            "Let us keep the discussion civil.",
            "More updates as they come in.",
            "{who} has been following this closely.",
            "The vote is {soon}.",
            "Read the full report before you judge.",
            "Local decisions matter.",
        ),
        {
            "subject": (
                "the city council",
                "the new transport plan",
                "the housing report",
                "the school budget",
                "the local election",
                "the climate summit",
                "the health service",
                "the new bridge project",
                "the minimum wage",
                "the recycling scheme",
            ),
            "action": (
                "was approved",
                "has been delayed again",
                "faces strong criticism",
                "finally got funding",
                "was announced",
                "sparked a heated debate",
                "was voted down",
            ),
            "opinion": (
                "worth reading",
                "a big deal for our town",
                "long overdue",
                "hard to believe",
                "a step in the right direction",
                "deeply worrying",
            ),
            "source": ("the local paper", "the evening news", "a long article", "the radio", "a podcast"),
        },
        ("news", "politics", "localnews", "breaking", "community", "election", "climate"),
        (0.7, 0.2, 0.1),
    ),
    "fitness": Topic(
        (
            "Finished {workout} before work {past}, feeling {feeling}",
            "Ran {distance} {past}, training for {goal} is finally paying off",
            "Three months of {workout} every week and I finally hit {goal}, feeling {feeling}",
            "Rest day after {workout} with {who}, feeling {feeling}",
            "Signed up for {goal} with {who}, now we have to actually train for it with {workout}",
            "Nothing clears my head like {workout}, I always come back {feeling}",
            "Tried {workout} with {who} for the first time and now I am {feeling}",
            "Progress update, {distance} without stopping and feeling {feeling}, a year ago I could not run at all",
            "Early alarm, {workout} and a big breakfast, the perfect start while training for {goal}",
            "Did {distance} and then {workout} {past}, training for {goal} is no joke",
        ),
        (
            "Consistency beats motivation.",
            "Stretching is not optional anymore.",
            "{who} is my accountability partner.",
            "Small steps every day.",
            "Protein shake time.",
            "Same again {soon}.",
            "The hardest part is putting the shoes on.",
            "Listen to your body.",
        ),
        {
            "workout": (
                "leg day",
                "a long run",
                "morning yoga",
                "a swim session",
                "interval training",
                "a bike ride",
                "a heavy lifting session",
                "a hike up the hill",
                "a spin class",
            ),
            "distance": ("five kilometres", "ten kilometres", "a half marathon", "twenty laps", "three miles"),
            "goal": ("a marathon", "my first triathlon", "a new personal best", "the charity race", "a pull up"),
            "feeling": (
                "exhausted but happy",
                "stronger than last week",
                "sore everywhere",
                "full of energy",
                "proud of myself",
                "completely wrecked",
            ),
        },
        ("fitness", "workout", "running", "gym", "yoga", "health", "motivation", "marathon"),
        (0.2, 0.4, 0.4),
    ),
    "pets": Topic(
        (
            "{pet} {mischief} {past} and I am {feeling}",
            "Morning walk to {place} with {pet} and {who}, best part of my day",
            "Day one with {pet} and {place} is already chaos, {who} is {feeling}",
            "Look who found the sunniest spot in {place} again, {pet} has no shame and I am {feeling}",
            "Any advice on training? {pet} {mischief} every single day and {who} is losing patience",
            "Adopted {pet} a year ago today and I am still {feeling}",
            "Took {pet} to {place} {past} and now we are both {feeling}",
            "Vet visit went well {past}, {pet} is healthy and I am {feeling}",
            "{who} was looking after {pet} and of course it {mischief}",
        ),
        (
            "Best friend ever.",
            "Treats were given.",
            "No regrets about adopting.",
            "{who} says I spoil them too much.",
            "Look at that face.",
            "They run the house now.",
            "Another walk {soon}.",
            "Adopt, do not shop.",
        ),
        {
            "pet": (
                "our puppy",
                "my old cat",
                "my rescue dog",
                "our kitten",
                "our rabbit",
                "my parrot",
                "our golden retriever",
                "my little terrier",
                "our grumpy cat",
            ),
            "mischief": (
                "stole a sock again",
                "learned to sit",
                "slept all day in the sun",
                "chased a squirrel",
                "refused to take a bath",
                "ate my sandwich",
                "barked at the mailman",
            ),
            "place": ("the park", "the garden", "the beach", "the living room", "the forest", "the kitchen"),
            "feeling": ("so proud", "in love", "laughing so hard", "a little worried", "completely exhausted"),
        },
        ("dogsofinstagram", "catlife", "pets", "puppy", "adoptdontshop", "dog", "cat"),
        (0.1, 0.6, 0.3),
    ),
    "gaming": Topic(
        (
            "Finally {achievement} in {game} after {hours} {platform}",
            "Spent {hours} playing {game} {platform}, no regrets",
            "Is {game} worth buying? Looking for something to play {platform} with {who}",
            "Streaming {game} {platform} {soon}, come say hello",
            "The latest patch for {game} fixed so many bugs, I played {hours} {platform} without a crash",
            "Our squad {achievement} in {game} {past}, what a feeling after {hours}",
            "Nostalgia trip, playing {game} {platform} with {who} like it is summer again",
            "Took {hours} but I {achievement} in {game}, my hands are shaking",
            "{who} finally {achievement} in {game} {platform}, I have never heard such screaming",
        ),
        (
            "Good game everyone.",
            "Clip in the comments.",
            "My controller survived, barely.",
            "{who} wants a rematch.",
            "Best soundtrack in any game.",
            "One more round, I promise.",
            "Going for the next challenge {soon}.",
            "The community for this game is great.",
        ),
        {
            "game": (
                "the new open world game",
                "an old racing game",
                "that indie puzzle game",
                "the strategy game everyone plays",
                "a cooperative shooter",
                "the fantasy role playing game",
                "a retro platformer",
                "the football game",
                "a cozy farming game",
            ),
            "achievement": (
                "beat the final boss",
                "reached the top rank",
                "finished the main story",
                "found every secret",
                "won ten matches in a row",
                "unlocked the hardest level",
            ),
            "hours": ("three hours", "the whole weekend", "all night", "an entire evening", "two whole days"),
            "platform": ("on the console", "on my old computer", "on the handheld", "online"),
        },
        ("gaming", "gamer", "esports", "videogames", "twitch", "retrogaming", "indiegame"),
        (0.3, 0.2, 0.5),
    ),
    "fashion": Topic(
        (
            "Found {item} in {color} at {store} for almost nothing, so happy",
            "Outfit for {occasion}, {item} in {color} with simple gold earrings",
            "Trying to build a capsule wardrobe around {color} and {item}, inspired by {who}",
            "Cannot decide what to wear to {occasion}, maybe {item} in {color}",
            "Spring cleaning my closet and donating everything except {item} in {color} from {store}",
            "Is {color} the colour of the season? Everyone at {occasion} wore {item} in it",
            "Thrift haul, {item} from {store}, perfect for {occasion}",
            "Wore {item} to {occasion} {past} and got so many compliments",
            "{who} lent me {item} for {occasion} and now I want one in {color}",
        ),
        (
            "Comfort first, always.",
            "Sustainable fashion is the way.",
            "Details in the comments.",
            "{who} approved the look.",
            "Feeling confident today.",
            "Second hand and proud.",
            "Wearing it again {soon}.",
            "Simple but classic.",
        ),
        {
            "item": (
                "a vintage denim jacket",
                "new white sneakers",
                "a linen summer dress",
                "a wool coat",
                "a silk scarf",
                "a pair of leather boots",
                "an oversized sweater",
                "a tailored blazer",
                "wide leg trousers",
            ),
            "store": ("a thrift shop", "the market", "a small boutique", "an online sale", "a charity shop"),
            "color": ("black", "olive green", "navy", "cream", "bright red", "soft pink", "mustard yellow"),
            "occasion": (
                "a wedding",
                "the office",
                "date night",
                "a long weekend away",
                "the first day of spring",
                "a birthday party",
            ),
        },
        ("ootd", "fashion", "style", "thrift", "outfit", "vintage", "streetstyle"),
        (0.1, 0.8, 0.1),
    ),
    "family": Topic(
        (
            "{kid} {milestone} {past}, {feeling}",
            "Weekend trip to {place} with {kid} and {who}, {feeling}",
            "Parenting is hard some days, but then {kid} {milestone} and it all makes sense",
            "Family game night with {kid} and {who} ended in {feeling} as usual",
            "Big day in our house, {kid} {milestone} and {who} cried",
            "Any ideas for a rainy day with {kid}? We already did {place} with {who}",
            "Ten years ago today we brought {kid} home, and now look, {feeling}",
            "Packed lunches, school run and a visit to {place} with {kid}, {feeling}",
            "{who} took {kid} to {place} {past} and came back with so many stories",
        ),
        (
            "They grow up so fast.",
            "Making memories.",
            "Coffee is the only reason I am awake.",
            "{who} took the photos.",
            "Grateful for every moment.",
            "Bedtime came early tonight.",
            "Another adventure {soon}.",
            "Family first.",
        ),
        {
            "kid": ("our daughter", "my son", "the twins", "my little brother", "our youngest", "the kids"),
            "milestone": (
                "lost a first tooth",
                "started school",
                "rode a bike without help",
                "read a whole book alone",
                "made breakfast for everyone",
                "scored a goal in the school game",
                "learned to swim",
            ),
            "place": ("the zoo", "the lake", "the science museum", "the playground", "the farm", "the aquarium"),
            "feeling": (
                "proud parent moment",
                "happy tears",
                "so much laughter",
                "chaos but worth it",
                "hearts full",
                "tired but grateful",
            ),
        },
        ("family", "parenting", "kids", "momlife", "dadlife", "familytime", "memories"),
        (0.3, 0.6, 0.1),
    ),
}
TOPIC_NAMES = list(TOPICS)
GENERIC_HASHTAGS = ("tbt", "weekend", "mood", "blessed", "throwback", "love", "happy", "life")

# Optional sentences around the topic's sentences.
OPENERS = (
    "Quick update.",
    "Big news everyone.",
    "Long day today.",
    "Okay, here goes.",
    "Good morning all.",
    "Happy Friday everyone.",
    "Random thought.",
    "Well, that happened.",
)
CLOSERS = (
    "What do you all think?",
    "Thoughts?",
    "Have a great weekend everyone!",
    "More soon.",
    "Who is with me?",
    "Highly recommend.",
    "Cannot wait to do it again.",
    "Best day in a while.",
)
OPENER_SHARE = 0.25
FOLLOW_UP_SHARE = 0.5
CLOSER_SHARE = 0.3
MIN_WORDS, MAX_WORDS = 8, 25
_FIELD = re.compile(r"{(\w+)}")
# Uniforms a post takes: the template, its fields, the follow-up and its field, the three options.
UNIFORMS_PER_POST = 1 + max(len(_FIELD.findall(t)) for topic in TOPICS.values() for t in topic.templates) + 2 + 3

# Near-duplicates: a reshare keeps the original's words but for a prefix or one swapped word.
RESHARE_PREFIXES = ("Reposting.", "Worth sharing.", "So true.", "Saw this and had to share.", "This.")
WORD_SWAPS = {
    "tonight": "today",
    "today": "tonight",
    "week": "month",
    "weekend": "holiday",
    "new": "latest",
    "really": "truly",
    "honestly": "frankly",
    "best": "greatest",
    "happy": "glad",
    "proud": "pleased",
    "finally": "eventually",
    "old": "ancient",
    "perfect": "ideal",
    "still": "yet",
    "great": "fantastic",
}


def _fill(template: str, fillers: dict[str, tuple[str, ...]], uniforms: Sequence[float]) -> str:
    """`template` with its fields filled, the i-th distinct field by the i-th uniform."""
    values = {}
    for u, name in zip(uniforms, dict.fromkeys(_FIELD.findall(template)), strict=False):
        choices = fillers[name] if name in fillers else SHARED_FILLERS[name]
        values[name] = choices[int(u * len(choices))]
    return _capitalised(template.format(**values))


def _capitalised(text: str) -> str:
    """Each sentence starting with a capital, the last one ending in punctuation."""
    text = re.sub(r"(^|[.?!] )([a-z])", lambda match: match.group(1) + match.group(2).upper(), text)
    return text if text[-1] in ".?!" else text + "."


def compose(topic: str, uniforms: Sequence[float]) -> str:
    """A post of `topic` picked by UNIFORMS_PER_POST uniforms in [0, 1) (see UNIFORMS_PER_POST).
    The opener, follow-up and closer are optional, but a post keeps to MIN_WORDS..MAX_WORDS words."""
    spec = TOPICS[topic]
    n_fields = UNIFORMS_PER_POST - 6
    template = spec.templates[int(uniforms[0] * len(spec.templates))]
    sentence = _fill(template, spec.fillers, uniforms[1 : 1 + n_fields])
    follow_up = spec.follow_ups[int(uniforms[1 + n_fields] * len(spec.follow_ups))]
    follow_up = _fill(follow_up, spec.fillers, uniforms[2 + n_fields : 3 + n_fields])
    use_opener, use_follow_up, use_closer = uniforms[-3], uniforms[-2], uniforms[-1]
    opener = OPENERS[int(use_opener * len(OPENERS))]
    closer = CLOSERS[int(use_closer * len(CLOSERS))]
    parts = [sentence]
    n_words = len(sentence.split())
    if use_follow_up < FOLLOW_UP_SHARE and n_words + len(follow_up.split()) <= MAX_WORDS:
        parts.append(follow_up)
        n_words += len(follow_up.split())
    if use_opener < OPENER_SHARE and n_words + len(opener.split()) <= MAX_WORDS:
        parts.insert(0, opener)
        n_words += len(opener.split())
    if (use_closer < CLOSER_SHARE or n_words < MIN_WORDS) and n_words + len(closer.split()) <= MAX_WORDS:
        parts.append(closer)
    return " ".join(parts)


def reshare(text: str, uniform: float) -> str:
    """A near-duplicate of `text`: one word swapped for a synonym when it has a swappable word
    (half of the time), a reposting prefix otherwise."""
    words = text.split(" ")
    swappable = [i for i, word in enumerate(words) if word.lower().strip(string.punctuation) in WORD_SWAPS]
    if swappable and uniform < 0.5:
        i = swappable[int(uniform * 2 * len(swappable))]
        bare = words[i].strip(string.punctuation)
        swap = WORD_SWAPS[bare.lower()]
        words[i] = words[i].replace(bare, swap.capitalize() if bare[0].isupper() else swap)
        return " ".join(words)
    return f"{RESHARE_PREFIXES[int(uniform * len(RESHARE_PREFIXES))]} {text}"


def words(text: str) -> list[str]:
    """The words of a text, lower case, punctuation stripped."""
    return [word.strip(string.punctuation).lower() for word in text.split()]


WORDS = frozenset(
    word
    for phrase in (
        *(t for topic in TOPICS.values() for t in (*topic.templates, *topic.follow_ups)),
        *(f for topic in TOPICS.values() for fills in topic.fillers.values() for f in fills),
        *(f for fills in SHARED_FILLERS.values() for f in fills),
        *OPENERS,
        *CLOSERS,
        *RESHARE_PREFIXES,
        *WORD_SWAPS.values(),
    )
    for word in words(_FIELD.sub(" ", phrase))
    if word
)
