"""The words of the product-search world: per-category product types with their real synonyms,
attributes, brands, colours and description phrases, as plain data.

    python -c "from systems.search.vocabulary import CATEGORIES; print(CATEGORIES['shoes'].types['sneakers'])"

A product type's first noun is its canonical name (the `product_type` of products and intents);
the others are real synonyms a seller or a shopper may use instead ("sofa", "couch", "settee"),
which is the vocabulary mismatch query expansion and semantic search exist for. A type's
`materials` are what it is made of, or for devices its main feature ("wireless"), always a word
that reads well before the noun ("leather sofa", "wireless headphones"). Complements and
substitutes name other types by their canonical noun; the world makes both relations symmetric.

Everything is lower case ASCII, and every word the world writes is in ENGLISH (checked against
symspellpy's English dictionary by the tests), except brand names, which are invented, and numbers.
"""

from __future__ import annotations

import string
from dataclasses import dataclass


@dataclass(frozen=True)
class ProductType:
    nouns: tuple[str, ...]  # real synonyms, the canonical one first
    materials: tuple[str, ...]  # or the main feature, for devices
    price: float  # median price in dollars
    complements: tuple[str, ...] = ()  # canonical nouns of the types bought with it
    substitutes: tuple[str, ...] = ()  # canonical nouns of the types that can stand in for it
    sizes: tuple[str, ...] | None = None  # None: the category's sizes
    colours: tuple[str, ...] | None = None  # canonical colours it comes in, most common first; None: the category's


@dataclass(frozen=True)
class Category:
    words: tuple[str, ...]  # what a vague shopper types for the whole category
    brands: tuple[str, ...]  # invented, one word each
    adjectives: tuple[str, ...]  # descriptive words of titles and descriptions (never a shopper's constraint)
    uses: tuple[str, ...]  # "ideal for {use}"
    lines: tuple[str, ...]  # category sentences of descriptions and bullet points
    types: dict[str, ProductType]
    colours: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    size_label: str = ""  # "size": the size follows the noun ("sneakers size 9"); else it precedes it ("55 inch tv")
    gendered: bool = False  # shoppers add "for men" / "for women"


# Canonical colour first; the others are what sellers and shoppers also call it.
COLOURS = {
    "black": ("black",),
    "white": ("white",),
    "grey": ("grey", "gray"),
    "navy": ("navy", "navy blue", "dark blue"),
    "blue": ("blue",),
    "red": ("red", "crimson"),
    "burgundy": ("burgundy", "maroon"),
    "pink": ("pink", "rose"),
    "green": ("green",),
    "beige": ("beige", "cream"),
    "brown": ("brown", "chocolate"),
    "silver": ("silver", "metallic"),
}
CLOTH_COLOURS = ("black", "grey", "navy", "blue", "white", "beige", "brown", "red", "green", "burgundy", "pink")
DEVICE_COLOURS = ("black", "white", "silver", "grey", "blue", "red", "pink")
HOME_COLOURS = ("grey", "beige", "white", "brown", "black", "navy", "green", "blue", "pink", "burgundy")
TOY_COLOURS = ("red", "blue", "pink", "green", "white", "brown", "black")
SCREEN_SIZES = ("32 inch", "43 inch", "55 inch", "65 inch")
BED_SIZES = ("twin", "full", "queen", "king")
LETTER_SIZES = ("small", "medium", "large")

CATEGORIES = {
    "shoes": Category(
        words=("shoes", "footwear"),
        brands=("northpeak", "stridewell", "fleetfoot", "trailmark", "solegrip", "runlux", "pacero", "kestrova"),
        adjectives=("lightweight", "comfortable", "breathable", "durable", "classic", "stylish"),
        uses=("running", "walking", "everyday wear", "the gym", "travel", "work"),
        lines=("cushioned sole for all day comfort", "slip resistant outsole", "padded collar and tongue"),
        colours=("black", "white", "grey", "navy", "brown", "beige", "blue", "red", "pink", "green"),
        sizes=("6", "7", "8", "9", "10", "11", "12"),
        size_label="size",
        gendered=True,
        types={
            "sneakers": ProductType(
                ("sneakers", "trainers", "running shoes"),
                ("mesh", "leather", "canvas", "suede", "knit"),
                70,
                complements=("socks", "insoles"),
            ),
            "boots": ProductType(("boots", "booties"), ("leather", "suede", "rubber"), 95, complements=("socks",)),
            "sandals": ProductType(("sandals", "slides", "flip flops"), ("leather", "rubber", "cork"), 35),
            "slippers": ProductType(("slippers", "house shoes"), ("fleece", "wool", "suede"), 25),
            "dress shoes": ProductType(
                ("dress shoes", "oxfords", "formal shoes"), ("leather", "suede"), 90, complements=("socks",)
            ),
            "insoles": ProductType(
                ("insoles", "shoe inserts"), ("foam", "gel", "cork"), 18, colours=("black", "beige", "blue")
            ),
        },
    ),
    "clothing": Category(
        words=("clothing", "clothes", "apparel"),
        brands=("threadly", "aldercrest", "wovenly", "norrland", "coastel", "vestara", "kinlo", "marlovo"),
        adjectives=("soft", "warm", "classic", "slim", "relaxed", "stylish", "comfortable"),
        uses=("everyday wear", "work", "the weekend", "travel", "cold days", "casual outings"),
        lines=("machine washable", "true to size fit", "soft feel that lasts wash after wash"),
        colours=CLOTH_COLOURS,
        sizes=LETTER_SIZES,
        size_label="size",
        gendered=True,
        types={
            "sweater": ProductType(
                ("sweater", "jumper", "pullover"),
                ("wool", "cotton", "cashmere", "fleece"),
                45,
                complements=("scarf",),
                substitutes=("hoodie",),
            ),
            "hoodie": ProductType(("hoodie", "hooded sweatshirt"), ("cotton", "fleece", "polyester"), 40),
            "trousers": ProductType(
                ("trousers", "pants", "slacks"),
                ("cotton", "linen", "wool", "polyester"),
                45,
                complements=("shirt",),
                substitutes=("jeans",),
            ),
            "jeans": ProductType(
                ("jeans", "denims"), ("stretch", "cotton", "organic cotton"), 50, complements=("shirt",)
            ),
            "jacket": ProductType(
                ("jacket", "coat"), ("leather", "denim", "nylon", "wool"), 90, complements=("scarf", "sweater")
            ),
            "shirt": ProductType(("shirt", "top", "tee"), ("cotton", "linen", "silk", "polyester"), 25),
            "socks": ProductType(("socks", "hosiery"), ("cotton", "wool", "bamboo"), 12),
            "scarf": ProductType(("scarf", "muffler"), ("wool", "cashmere", "silk", "cotton"), 25, sizes=()),
        },
    ),
    "electronics": Category(
        words=("electronics", "gadgets", "devices"),
        brands=("lumivo", "voltrix", "nexora", "sonique", "zentek", "pixelon", "auralis", "quantix"),
        adjectives=("compact", "portable", "powerful", "sleek", "premium", "fast"),
        uses=("work", "gaming", "travel", "streaming", "music", "video calls"),
        lines=("backed by a one year warranty", "easy setup in minutes", "energy efficient design"),
        colours=DEVICE_COLOURS,
        types={
            "television": ProductType(
                ("television", "tv", "telly"),
                ("led", "smart", "curved"),
                450,
                complements=("tv stand",),
                sizes=SCREEN_SIZES,
                colours=("black", "silver", "white"),
            ),
            "laptop": ProductType(
                ("laptop", "notebook computer"),
                ("aluminium", "touchscreen", "gaming"),
                800,
                complements=("laptop bag", "mouse"),
                substitutes=("tablet",),
                sizes=("13 inch", "14 inch", "15 inch"),
            ),
            "tablet": ProductType(
                ("tablet", "tablet computer"),
                ("aluminium", "wifi", "cellular"),
                350,
                complements=("charger",),
                sizes=("8 inch", "10 inch", "12 inch"),
            ),
            "phone": ProductType(
                ("phone", "smartphone", "mobile phone", "cell phone"),
                ("unlocked", "refurbished", "waterproof"),
                600,
                complements=("phone case", "charger"),
            ),
            "headphones": ProductType(
                ("headphones", "earphones", "headset"),
                ("wireless", "bluetooth", "wired", "noise cancelling"),
                80,
                substitutes=("earbuds",),
            ),
            "earbuds": ProductType(
                ("earbuds", "ear buds", "in ear headphones"),
                ("wireless", "bluetooth", "waterproof"),
                60,
                complements=("charger",),
            ),
            "phone case": ProductType(("phone case", "phone cover"), ("silicone", "leather", "plastic"), 15),
            "charger": ProductType(
                ("charger", "charging cable", "power adapter"),
                ("wireless", "fast", "braided"),
                20,
                colours=("black", "white"),
            ),
        },
    ),
    "furniture": Category(
        words=("furniture",),
        brands=("oakhaven", "nordholm", "casara", "havenly", "sitwella", "bramford", "lounja", "woodrix"),
        adjectives=("modern", "sturdy", "classic", "compact", "elegant", "rustic"),
        uses=("the living room", "the bedroom", "small spaces", "the home office", "apartments"),
        lines=("easy assembly with all tools included", "solid frame built to last", "fits any room"),
        colours=HOME_COLOURS,
        types={
            "sofa": ProductType(
                ("sofa", "couch", "settee"),
                ("leather", "velvet", "linen", "fabric"),
                700,
                complements=("cushion", "throw blanket", "coffee table"),
                substitutes=("armchair",),
            ),
            "armchair": ProductType(
                ("armchair", "accent chair", "lounge chair"), ("leather", "velvet", "linen", "fabric"), 250
            ),
            "coffee table": ProductType(
                ("coffee table", "cocktail table"), ("wood", "glass", "marble", "metal"), 180, complements=("rug",)
            ),
            "bed": ProductType(
                ("bed", "bed frame"), ("wood", "metal", "upholstered"), 400, complements=("mattress",), sizes=BED_SIZES
            ),
            "mattress": ProductType(
                ("mattress", "bed mattress"), ("memory foam", "latex", "hybrid"), 500, sizes=BED_SIZES, colours=()
            ),
            "desk": ProductType(
                ("desk", "writing desk", "computer desk"),
                ("wood", "metal", "glass"),
                200,
                complements=("office chair", "desk lamp"),
            ),
            "office chair": ProductType(
                ("office chair", "desk chair", "computer chair"), ("mesh", "leather", "fabric"), 180
            ),
            "tv stand": ProductType(
                ("tv stand", "media console", "entertainment center"),
                ("wood", "metal", "glass"),
                150,
                complements=("television",),
            ),
        },
    ),
    "kitchen": Category(
        words=("kitchen", "kitchenware", "cookware"),
        brands=("chefora", "kettlebrook", "panterra", "saucely", "copperleaf", "mixwell", "culinova", "brewsto"),
        adjectives=("durable", "compact", "classic", "modern", "sturdy", "premium"),
        uses=("everyday cooking", "busy mornings", "family meals", "entertaining", "small kitchens"),
        lines=("dishwasher safe parts", "easy to clean", "a great gift for any cook"),
        colours=("black", "white", "silver", "red", "grey", "blue", "green", "pink"),
        types={
            "mug": ProductType(
                ("mug", "cup", "coffee mug"),
                ("ceramic", "glass", "porcelain", "stoneware"),
                12,
                complements=("coffee maker", "kettle"),
            ),
            "kettle": ProductType(
                ("kettle", "electric kettle", "tea kettle"), ("stainless steel", "glass", "plastic"), 40
            ),
            "blender": ProductType(
                ("blender", "smoothie maker"),
                ("glass", "plastic", "stainless steel"),
                70,
                substitutes=("food processor",),
            ),
            "food processor": ProductType(("food processor", "food chopper"), ("plastic", "stainless steel"), 90),
            "refrigerator": ProductType(
                ("refrigerator", "fridge"),
                ("stainless steel", "mini", "french door"),
                900,
                colours=("silver", "white", "black"),
            ),
            "frying pan": ProductType(
                ("frying pan", "skillet", "fry pan"), ("cast iron", "stainless steel", "nonstick", "copper"), 35
            ),
            "knife set": ProductType(
                ("knife set", "kitchen knives", "knife block"), ("stainless steel", "carbon steel", "ceramic"), 60
            ),
            "coffee maker": ProductType(
                ("coffee maker", "coffee machine"), ("stainless steel", "plastic", "glass"), 80
            ),
        },
    ),
    "home decor": Category(
        words=("home decor", "decor", "decorations"),
        brands=("hearthly", "luminelle", "velaro", "casabella", "mirabel", "lanterna", "nestora", "dwellix"),
        adjectives=("modern", "elegant", "rustic", "warm", "minimalist", "vintage"),
        uses=("the living room", "the bedroom", "entertaining", "quiet evenings", "any room"),
        lines=("adds character to any space", "carefully made by skilled artisans", "a lovely housewarming gift"),
        colours=HOME_COLOURS,
        types={
            "lamp": ProductType(
                ("lamp", "light", "table lamp"),
                ("ceramic", "brass", "glass", "wood"),
                45,
                complements=("light bulb",),
                substitutes=("desk lamp",),
            ),
            "light bulb": ProductType(("light bulb", "bulb"), ("led", "halogen", "smart"), 8, colours=()),
            "rug": ProductType(
                ("rug", "carpet", "area rug"), ("wool", "jute", "cotton", "polyester"), 120, sizes=LETTER_SIZES
            ),
            "curtains": ProductType(("curtains", "drapes"), ("linen", "velvet", "cotton", "polyester"), 40),
            "cushion": ProductType(
                ("cushion", "throw pillow", "decorative pillow"),
                ("velvet", "linen", "cotton", "wool"),
                20,
                complements=("throw blanket",),
            ),
            "throw blanket": ProductType(
                ("throw blanket", "throw", "blanket"), ("fleece", "wool", "cotton", "knit"), 35
            ),
            "mirror": ProductType(("mirror", "wall mirror"), ("wood", "metal", "rattan"), 70),
            "vase": ProductType(("vase", "flower vase"), ("ceramic", "glass", "porcelain"), 25),
        },
    ),
    "sports": Category(
        words=("sports", "fitness", "sports equipment"),
        brands=("flexora", "ironpeak", "velocita", "sprintex", "zenmato", "pedalon", "acelite", "fitcora"),
        adjectives=("durable", "lightweight", "portable", "professional", "sturdy"),
        uses=("home workouts", "the gym", "training", "outdoor fun", "beginners"),
        lines=("built for serious training", "tested by professional athletes", "easy to store"),
        colours=("black", "blue", "red", "grey", "green", "pink", "white"),
        types={
            "yoga mat": ProductType(
                ("yoga mat", "exercise mat", "fitness mat"),
                ("rubber", "foam", "cork"),
                30,
                complements=("water bottle", "resistance bands"),
            ),
            "dumbbells": ProductType(
                ("dumbbells", "hand weights", "free weights"),
                ("iron", "rubber", "neoprene"),
                40,
                sizes=("5 pound", "10 pound", "15 pound", "20 pound"),
            ),
            "water bottle": ProductType(
                ("water bottle", "drinking bottle", "sports bottle"), ("stainless steel", "plastic", "glass"), 20
            ),
            "bicycle": ProductType(
                ("bicycle", "bike", "cycle"), ("aluminium", "steel", "carbon"), 450, complements=("bike helmet",)
            ),
            "bike helmet": ProductType(
                ("bike helmet", "cycling helmet", "bicycle helmet"),
                ("foam", "plastic", "carbon"),
                50,
                sizes=LETTER_SIZES,
            ),
            "tennis racket": ProductType(
                ("tennis racket", "tennis racquet"),
                ("graphite", "aluminium", "carbon"),
                90,
                complements=("tennis balls",),
            ),
            "tennis balls": ProductType(("tennis balls", "tennis ball"), ("felt", "pressurized"), 8, colours=()),
            "resistance bands": ProductType(
                ("resistance bands", "exercise bands", "workout bands"), ("latex", "fabric", "rubber"), 20
            ),
        },
    ),
    "beauty": Category(
        words=("beauty", "skincare", "cosmetics"),
        brands=("glowra", "silkara", "purelle", "bellanova", "aurelle", "dermique", "lumiskin", "verdessa"),
        adjectives=("gentle", "natural", "nourishing", "lightweight", "refreshing", "luxurious"),
        uses=("daily use", "travel", "the morning routine", "gifting", "everyday care"),
        lines=("dermatologist tested", "free from harsh chemicals", "not tested on animals"),
        types={
            "shampoo": ProductType(
                ("shampoo", "hair wash"), ("coconut", "almond", "aloe", "lavender"), 12, complements=("conditioner",)
            ),
            "conditioner": ProductType(
                ("conditioner", "hair conditioner"), ("coconut", "almond", "aloe", "lavender"), 12
            ),
            "moisturizer": ProductType(
                ("moisturizer", "moisturiser", "face cream"),
                ("aloe", "shea butter", "cucumber", "honey"),
                25,
                complements=("sunscreen",),
            ),
            "lipstick": ProductType(
                ("lipstick", "lip color"),
                ("matte", "satin", "gloss"),
                15,
                colours=("red", "pink", "burgundy", "brown", "beige"),
            ),
            "perfume": ProductType(("perfume", "fragrance", "cologne"), ("floral", "citrus", "woody", "vanilla"), 60),
            "hair dryer": ProductType(
                ("hair dryer", "blow dryer", "hairdryer"),
                ("ionic", "ceramic", "travel"),
                45,
                colours=("black", "white", "pink", "silver"),
            ),
            "sunscreen": ProductType(("sunscreen", "sunblock", "sun cream"), ("mineral", "sport", "spray"), 12),
            "toothbrush": ProductType(
                ("toothbrush", "tooth brush"),
                ("electric", "bamboo", "sonic"),
                30,
                colours=("white", "black", "blue", "pink"),
            ),
        },
    ),
    "toys": Category(
        words=("toys", "games", "kids toys"),
        brands=("playmoor", "tinkerly", "brickton", "wigglo", "jollipop", "kidoodle", "fablebox", "toyvana"),
        adjectives=("bright", "educational", "classic", "fun", "durable", "creative"),
        uses=("kids", "toddlers", "family game night", "birthdays", "creative play", "gifting"),
        lines=("safe for children over three", "hours of imaginative play", "a perfect birthday gift"),
        colours=TOY_COLOURS,
        types={
            "building blocks": ProductType(
                ("building blocks", "building bricks", "construction set"), ("plastic", "wood", "foam"), 35
            ),
            "doll": ProductType(("doll", "dolly"), ("plastic", "cloth", "porcelain"), 25),
            "teddy bear": ProductType(("teddy bear", "stuffed animal", "plush toy"), ("plush", "cotton", "fleece"), 20),
            "puzzle": ProductType(
                ("puzzle", "jigsaw puzzle", "jigsaw"),
                ("cardboard", "wood"),
                18,
                sizes=("500 piece", "1000 piece"),
                colours=(),
            ),
            "board game": ProductType(("board game", "tabletop game"), ("wood", "cardboard"), 30, colours=()),
            "toy car": ProductType(("toy car", "model car", "toy vehicle"), ("metal", "plastic", "remote control"), 20),
            "action figure": ProductType(("action figure", "figurine"), ("plastic", "vinyl"), 18),
        },
    ),
    "garden": Category(
        words=("garden", "gardening", "outdoor"),
        brands=("verdantia", "hedgely", "mossbrook", "terrafina", "sproutly", "lawnmara", "bloomrix", "greenvale"),
        adjectives=("durable", "sturdy", "weatherproof", "lightweight", "heavy duty"),
        uses=("the backyard", "the patio", "small gardens", "lawn care", "the summer"),
        lines=("built to withstand the elements", "rust resistant", "easy to store over winter"),
        colours=("green", "black", "grey", "brown", "beige", "white", "blue"),
        types={
            "garden hose": ProductType(
                ("garden hose", "hose", "hosepipe"),
                ("rubber", "vinyl", "expandable"),
                35,
                complements=("sprinkler",),
                sizes=("25 foot", "50 foot", "100 foot"),
            ),
            "sprinkler": ProductType(("sprinkler", "lawn sprinkler"), ("metal", "plastic"), 25),
            "lawn mower": ProductType(
                ("lawn mower", "lawnmower", "grass cutter"),
                ("electric", "cordless", "gas"),
                300,
                colours=("green", "black"),
            ),
            "plant pot": ProductType(
                ("plant pot", "flower pot", "planter"),
                ("terracotta", "ceramic", "plastic", "concrete"),
                20,
                complements=("potting soil",),
            ),
            "potting soil": ProductType(
                ("potting soil", "potting mix", "compost"), ("organic", "peat"), 12, colours=()
            ),
            "garden gloves": ProductType(
                ("garden gloves", "gardening gloves", "work gloves"),
                ("leather", "cotton", "nitrile"),
                12,
                sizes=LETTER_SIZES,
            ),
            "patio chair": ProductType(
                ("patio chair", "garden chair", "outdoor chair"), ("teak", "rattan", "metal", "plastic"), 90
            ),
            "grill": ProductType(
                ("grill", "barbecue"), ("charcoal", "gas", "electric"), 250, colours=("black", "silver")
            ),
        },
    ),
    "office": Category(
        words=("office supplies", "stationery", "office"),
        brands=("scriptly", "deskora", "paperix", "officio", "typora", "notara", "clipwise", "ledgero"),
        adjectives=("compact", "sleek", "durable", "classic", "professional", "reliable"),
        uses=("the home office", "school", "work", "students", "the office"),
        lines=("a smart choice for busy desks", "built for daily use", "clean look for any workspace"),
        colours=("black", "white", "grey", "silver", "blue", "red"),
        types={
            "notebook": ProductType(
                ("notebook", "notepad", "journal"), ("leather", "spiral", "hardcover"), 12, complements=("pen",)
            ),
            "pen": ProductType(("pen", "ballpoint pen", "ballpoint"), ("metal", "plastic", "gel"), 8),
            "printer": ProductType(
                ("printer", "printing machine"), ("laser", "wireless", "colour"), 180, complements=("printer paper",)
            ),
            "printer paper": ProductType(
                ("printer paper", "copy paper", "copier paper"), ("recycled", "bright"), 10, colours=()
            ),
            "mouse": ProductType(
                ("mouse", "computer mouse"),
                ("wireless", "wired", "bluetooth", "ergonomic"),
                25,
                complements=("keyboard",),
            ),
            "keyboard": ProductType(("keyboard", "computer keyboard"), ("wireless", "mechanical", "bluetooth"), 50),
            "monitor": ProductType(
                ("monitor", "computer monitor", "display"),
                ("curved", "led", "touchscreen"),
                220,
                sizes=("24 inch", "27 inch", "32 inch"),
                colours=("black", "white", "silver"),
            ),
            "desk lamp": ProductType(("desk lamp", "reading lamp", "task lamp"), ("metal", "plastic", "led"), 30),
        },
    ),
    "bags": Category(
        words=("bags", "luggage"),
        brands=("packwell", "roamly", "satchelo", "voyagio", "totefield", "bagsmith", "journa", "wandero"),
        adjectives=("durable", "lightweight", "spacious", "stylish", "compact", "classic"),
        uses=("travel", "work", "school", "weekend trips", "the gym", "daily commutes"),
        lines=("plenty of pockets to stay organised", "padded straps for comfort", "water resistant finish"),
        colours=("black", "brown", "navy", "grey", "beige", "red", "pink", "green", "blue"),
        gendered=True,
        types={
            "backpack": ProductType(
                ("backpack", "rucksack", "knapsack"),
                ("nylon", "canvas", "leather", "polyester"),
                50,
                complements=("water bottle",),
                substitutes=("messenger bag",),
            ),
            "suitcase": ProductType(
                ("suitcase", "travel case", "rolling luggage"),
                ("polycarbonate", "aluminium", "nylon"),
                150,
                sizes=LETTER_SIZES,
            ),
            "handbag": ProductType(("handbag", "purse"), ("leather", "suede", "canvas"), 80, complements=("wallet",)),
            "wallet": ProductType(("wallet", "billfold"), ("leather", "canvas", "nylon"), 30),
            "laptop bag": ProductType(
                ("laptop bag", "laptop sleeve", "laptop case"),
                ("leather", "nylon", "neoprene"),
                40,
                sizes=("13 inch", "15 inch", "17 inch"),
            ),
            "tote bag": ProductType(("tote bag", "tote", "shopping bag"), ("canvas", "cotton", "jute"), 20),
            "duffel bag": ProductType(("duffel bag", "gym bag", "holdall"), ("nylon", "canvas", "leather"), 45),
            "messenger bag": ProductType(
                ("messenger bag", "shoulder bag", "satchel"), ("leather", "canvas", "nylon"), 55
            ),
        },
    ),
}

# Words shoppers add that constrain nothing.
FILLERS_BEFORE = ("cheap", "best", "new", "good")
FILLERS_AFTER = ("sale", "on sale")
FILLERS_GENDERED = ("for men", "for women")

# Description sentences: no articles and no verbs that agree with the noun, since nouns are
# singular ("sofa") or plural ("sneakers"); materials and features always stand before the noun.
DESCRIPTIONS = (
    "{brand} {material} {noun}, {adjective} and {adjective2}. ideal for {use}.",
    "{adjective} {material} {noun} from {brand}, made for {use}.",
    "the {adjective} choice for {use}: {brand} {material} {noun}, {adjective2} and easy to care for.",
    "{brand} brings {adjective2} {material} {noun} to {use}. {adjective} and ready when you are.",
)
BULLETS = ("{adjective} and {adjective2}", "ideal for {use}", "{material} {noun} by {brand}")

# The real-English words the world may write (brand names and numbers aside); the tests check that
# generated text uses no other word and that each is in an English dictionary ("tv" aside).
ENGLISH = frozenset(
    """
    a accent action adapter adds after all almond aloe aluminium and animal animals any apartments apparel are
    area armchair artisans assembly athletes backed backpack backyard bag bags ball ballpoint balls bamboo
    bands barbecue bear beauty bed bedroom beginners beige best bicycle bike billfold birthday birthdays black
    blanket blender block blocks blow blue bluetooth board booties boots bottle braided brass breathable
    bricks bright brings brown brush buds building built bulb burgundy busy butter by cable calls cancelling
    canvas car carbon cardboard care carefully carpet case cashmere cast casual cell cellular center ceramic
    chair character charcoal charger charging cheap chemicals children chocolate choice chopper citrus classic
    clean cloth clothes clothing coat cocktail coconut coffee cold collar cologne color colour comfort
    comfortable commutes compact compost computer concrete conditioner console construction control cook
    cooking cookware copier copper copy cordless cork cosmetics cotton couch cover cream creative crimson
    cucumber cup curtains curved cushion cushioned cutter cycle cycling daily dark day days decor decorations
    decorative denim denims dermatologist design desk desks devices dishwasher display doll dolly door drapes
    dress drinking dryer duffel dumbbells durable duty ear earbuds earphones easy educational efficient
    electric electronics elegant elements energy entertaining entertainment equipment ergonomic evenings
    everyday exercise expandable fabric face family fast feel felt figure figurine finish fit fitness fits
    fleece flip flops floral flower foam food foot footwear for formal fragrance frame free french fridge from
    fry frying full fun furniture gadgets game games gaming garden gardening gardens gas gel gentle gift
    gifting glass gloss gloves good graphite grass gray great green grey grill gym hair hairdryer halogen hand
    handbag hardcover harsh headphones headset heavy helmet holdall home honey hooded hoodie hose hosepipe
    hosiery hours house housewarming hybrid ideal imaginative in inch included inserts insoles ionic iron
    jacket jeans jigsaw journal jumper jute kettle keyboard kids king kitchen kitchens kitchenware knapsack
    knife knit knives lamp laptop large laser last lasts latex lavender lawn lawnmower leather led light
    lightweight linen lip lipstick living look lounge lovely luggage luxurious machine made maker marble
    maroon mat matte mattress meals mechanical media medium memory men mesh messenger metal metallic mineral
    mini minimalist minutes mirror mix mobile model modern moisturiser moisturizer monitor morning mornings
    mouse mower muffler mug music natural navy neoprene new night nitrile noise nonstick not notebook notepad
    nourishing nylon of office on one organic organised outdoor outings outsole over oxfords padded pan pants
    paper parts patio peat pen perfect perfume phone piece pillow pink plant planter plastic play plenty plush
    pockets polycarbonate polyester porcelain portable pot potting pound power powerful premium pressurized
    printer printing processor professional pullover purse puzzle queen quiet racket racquet rattan reading
    ready recycled red refreshing refrigerator refurbished relaxed reliable remote resistance resistant
    rolling room rose routine rubber rucksack rug running rust rustic safe sale sandals satchel satin scarf
    school serious set settee setup shampoo shea shirt shoe shoes shopping shoulder silicone silk silver size
    skilled skillet skincare slacks sleek sleeve slides slim slip slippers small smart smartphone smoothie
    sneakers socks sofa soft soil sole solid sonic space spaces spacious spiral sport sports spray sprinkler
    stainless stand stationery stay steel stoneware store straps streaming stretch students stuffed sturdy
    stylish suede suitcase summer sun sunblock sunscreen supplies sweater sweatshirt table tablet tabletop
    task tea teak teddy tee television telly tennis terracotta tested that the three throw to toddlers tongue
    tools tooth toothbrush top tote touchscreen toy toys trainers training travel trips trousers true tv twin
    unlocked upholstered use vanilla vase vehicle velvet video vintage vinyl walking wall wallet warm warranty
    wash washable water waterproof wear weatherproof weekend weights when white wifi winter wired wireless
    with withstand women wood woody wool work workout workouts workspace writing year yoga you
    """.split()
)


def words(text: str) -> list[str]:
    """The words of a text, punctuation stripped."""
    return [word for word in (w.strip(string.punctuation) for w in text.split()) if word]


def brands() -> frozenset[str]:
    return frozenset(brand for category in CATEGORIES.values() for brand in category.brands)
