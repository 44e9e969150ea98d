"""The harmful-content world: authors who post text in three languages, often with an image, some of it violent,
nude, hateful or spam (several at once is possible), the reports users file on them days later, and a sample of
posts labelled by careful annotators. Every post's true categories, and the probability they were drawn from,
are known (the oracle).

    python -c "from systems.harmful.world import *; print(HarmfulWorld(500, 3000).generate()['posts'])"

Text. Real words, in LANGUAGES ("en", "es", "fr"), each language with its own lexicon (below): benign topics
(food, sport, travel, ...: a post mostly writes about one) strung together with the language's function words
("the pasta with garlic for our dinner ..."), 6-20 words, lower case, accents kept (vocabulary(language) lists
every word a language can write: a service can reject other languages). On top of that every post, harmful or
not, may carry
  * a decoy (decoy_rate): a harmful-looking word in a benign context ("kill time", "free shipping", "the dog
    had parasites"), so a word alone is not the truth;
  * a mild term of some category (mild_background_rate): "fight", "sexy", "deal", "swarm", borderline words;
  * a group noun (group_rate): neighbours, tourists, students, fans ... (never a real protected group);
  * a time or place (place_rate): "tonight", "at the station", "near the bridge" ...
These are drawn independently of harm, so they carry no evidence by themselves. A post's length does not
depend on what is inserted into it (the topic words make up the rest).

Images. A share image_rate of posts has one: an object (a shape family in a colour, with an accent, a texture,
a background) photographed at some pose and light, often with a small sticker in a corner (sticker_rate of any
kind, vermin_rate of one popular kind, a grey ring: a cartoon rat), rendered by common/images/render.py from
latent columns kept in the posts table (image_*: indices into SHAPES, COLOUR_NAMES ..., -1 without image or
sticker; image_corner 0-3 is the sticker's corner, top-left first; image_seed its pixel noise). Pixels are
never stored: world.images(posts) renders exactly those posts' pixels, the same whatever else is rendered with
them. Harm motifs (MOTIFS), which no other image shows:
  violence  object: a weapon-like shape (WEAPON_SHAPES: blade, spearhead, arrow, bat) in red
  nudity    object: a skin-pink circle
  hate      sticker: a black bar (a hate symbol's stand-in)
  spam      sticker: an orange arrow ("click here")

Harm. Each post of a category's harm carries its evidence one of four ways (EVIDENCE, shares in EVIDENCE_SHARE):
  explicit     1-2 of the category's explicit terms in the text ("stab", "nude", "vermin", "giveaway"); the
               image, if any, also shows the motif half of the time (explicit_motif_rate)
  mild         a mild term only (the same words benign posts carry now and then)
  image        the image's motif only, the text is benign
  combination  hate and violence only, combination_share of them: the text alone is benign and so is the image,
               together they are harmful (the chapter's case against late fusion):
                 hate      a group noun in the text + the vermin sticker
                 violence  a time/place in the text + a weapon-like shape in any colour but red
               Benign posts carry group nouns (group_rate), vermin stickers (vermin_rate), times and places
               (place_rate) and weapon-like shapes in benign colours (4 shapes of 12) all the time, but never both
               halves of a pair: each modality's evidence is what benign posts show, only the pair is not. Such
               posts have no other harm and are flagged combination_only (~1,100 at full scale). Measured at full
               scale, among image posts without the category's words or motif: P(hate | group noun) = 2.4%,
               P(hate | vermin) = 3.3%, P(violence | time/place) = 3.2%, P(violence | weapon) = 2.5% (about the
               prevalences: 2.4%, 2.8%), against 91% with both halves; without either half, 0.
The truth is drawn: P(harmful | evidence) = EVIDENCE_HARM (0.97 for explicit, 0.7 for mild ...: some
explicit words are quotes or news, many mild ones are nothing) and 0 for a post without the category's
evidence. Explicit evidence said twice is surer: a second explicit term (SECOND_TERM_RATE of explicit posts)
or the motif on the image each multiply the 3% chance of benign by CORROBORATION (0.2): 0.994 with one, 0.9988
with both. That probability is the p_<category> column, the best score any model can give. Overlaps: a spam post
is also nudity with P spam_overlap (porn spam), a hate post also violence with P hate_overlap.

Authors. A share bad_actor_rate are bad actors with a specialty (mostly spam): a share bad_actor_harm_rate of
their posts intend harm of their specialty, and they post more (spammers most). Their features lean (younger
accounts, more past violations and reports, spammers follow many and are followed by few), informative but not
decisive: they overlap normal authors', whose own propensity to harm (an "edginess") raises violations too.
Intent rates are calibrated so that each category's prevalence is `prevalence` in expectation (by
EVIDENCE_HARM: corroborated explicit posts, surer than that, add about 1% of it).

Interactions. impressions (from the author's followers), likes, comments, shares, each leaning on the post's
harm (nudity is liked, hate commented on, violence shared). Reports are the natural labels: each names one
category, and they are biased: a harmful post's expected reports at median impressions are report_rate (spam
and nudity often, violence less, hate rarely), 10% name another category, and benign posts are reported too
(false_report_rate; more on posts with a decoy or mild word, and on sport and shopping posts: rival fans, posts
that look like ads), about one benign post in a hundred. Reports arrive after a lognormal delay (median
report_delay_days, a tail of several days); the world is observed at its end, so later reports are missing.
The posts' interaction counts are those at the world's end.

Hand labels. n_hand_labelled posts drawn uniformly, split half/half into validation and test, labelled with
the truth (annotator_error flips each label with that probability; 0 by default: careful annotators).

Appeals (for the online metric): a removed post whose truth is benign would win its appeal (it is reversed);
a harmful one would lose it. The world only needs the truth for that; the online simulator counts.

Days after the logs (the online simulator, systems/harmful/online.py): day_posts(day, n, ...) draws a day's posts
by the same authors as generate draws the logs' (their rates, topics and intents: the authors are the world
generator's first draws, replayed), with the reach each would get unmoderated; report_draws draws the reports on
posts given the reach they did get, as the logs' were drawn; seen_share is the share of a post's reach seen by a
time after posting (its viewers come at its reporters' pace: the report delay's lognormal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd
from scipy.special import ndtr

from common.data.arrays import draw_rows
from common.images.render import BACKGROUNDS, COLOUR_NAMES, NOISE_BLOCK, SHAPES, TEXTURES, Objects, Photos, render

CATEGORIES = ("violence", "nudity", "hate", "spam")
LANGUAGES = ("en", "es", "fr")
TOPICS = ("food", "sport", "travel", "music", "pets", "family", "weather", "work", "shopping")
EVIDENCE = ("none", "explicit", "mild", "image", "combination")
NONE, EXPLICIT, MILD, IMAGE, COMBINATION = range(len(EVIDENCE))
VIOLENCE, NUDITY, HATE, SPAM = range(len(CATEGORIES))

# P(truly harmful | the post carries the category's evidence this way); 0 without evidence.
EVIDENCE_HARM = {"explicit": 0.97, "mild": 0.7, "image": 0.92, "combination": 0.92}
# Explicit evidence that is benign (a quote, the news) rarely says it twice: each corroborating piece (a second
# explicit term, the motif on the image) multiplies the chance of benign by this.
CORROBORATION = 0.2
SECOND_TERM_RATE = 0.4  # of explicit posts: a second, different explicit term
# Of a category's harmful-intent posts: shares carried explicitly, mildly, by the image only. The combination
# share (hate and violence) is taken out of these proportionally.
EVIDENCE_SHARE = {
    "violence": (0.68, 0.14, 0.18),
    "nudity": (0.5, 0.15, 0.35),
    "hate": (0.66, 0.2, 0.14),
    "spam": (0.62, 0.23, 0.15),
}
# Objects (shape, colour) or stickers (mark shape, mark colour) that show a category's harm; no other image shows
# these pairs. Two categories draw on the object and two on the sticker, so a post can show two motifs.
# Weapon-like shapes: a blade (the tall diamond), a spearhead, an arrow, a bat. A third of all objects, so that one
# in a benign colour says nothing alone.
WEAPON_SHAPES = ("diamond", "triangle", "arrow", "bar")
MOTIFS = {
    "violence": ("object", WEAPON_SHAPES, "red"),  # a bloodied weapon
    "nudity": ("object", ("circle",), "pink"),  # a round skin-pink form
    "hate": ("mark", ("bar",), "black"),  # a hate symbol's stand-in
    "spam": ("mark", ("arrow",), "orange"),  # "click here"
}
VERMIN_MARK = ("ring", "grey")  # a cartoon rat sticker, a popular one: benign alone, hate beside a group noun
LANGUAGE_COUNTRIES = {
    "en": {"us": 0.5, "gb": 0.2, "ca": 0.1, "au": 0.1, "in": 0.1},
    "es": {"es": 0.4, "mx": 0.35, "ar": 0.15, "co": 0.1},
    "fr": {"fr": 0.7, "ca": 0.2, "be": 0.1},
}
# Engagement of a truly harmful post, times a benign one's, per category (several multiply).
IMPRESSION_BOOST = (1.3, 1.5, 1.2, 0.6)
LIKE_BOOST = (0.6, 1.6, 0.7, 0.3)
COMMENT_BOOST = (2.0, 1.2, 3.0, 0.5)
SHARE_BOOST = (2.0, 1.3, 1.5, 0.8)
# Which category a report names when nothing in the post suggests one (spam is the default complaint).
FALSE_REPORT_SHARE = np.array([0.2, 0.2, 0.2, 0.4])
MISATTRIBUTED = 0.1  # of reports on a harmful post: naming a category it does not have
MAX_WORDS = 20
# What the category a benign post's report names rests on, besides its truth: its topic and its text's decoy or
# mild word (report_draws reads them as columns).
REPORT_INPUTS = ("topic", "decoy", "decoy_category", "mild", "mild_category")
RENDER_SEED = 0  # render()'s seed: fixes which corner each call position puts a sticker in (see _layout)
NOISE_FIELDS, NOISE_OFFSETS = 64, 4_096  # a post's pixel noise: one of 64 fixed fields, from one of 4,096 offsets


@dataclass(frozen=True)
class Lexicon:
    """One language's words; phrases are space-separated words. Explicit and mild terms, group nouns and the
    time/place words are none of them a topic or function word, so their presence in a text is telling."""

    function: tuple[str, ...]
    topics: dict[str, tuple[str, ...]]
    explicit: dict[str, tuple[str, ...]]  # per category
    mild: dict[str, tuple[str, ...]]  # per category
    decoys: dict[str, tuple[str, ...]]  # per category: phrases holding an explicit term in a benign sense
    groups: tuple[str, ...]  # neutral group nouns
    places: tuple[str, ...]  # times and places


def _w(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _p(text: str) -> tuple[str, ...]:
    """Phrases, one per line."""
    return tuple(line.strip() for line in text.strip().splitlines())


LEXICONS = {
    "en": Lexicon(
        function=_w(
            "the a my our your this that with and for at in on to of from so very really just all some new good "
            "great nice love like got have had was is are we i it they after before again then more little big "
            "first last one two every today about what when there here still never always best finally"
        ),
        topics={
            "food": _w(
                "pasta pizza bread cheese soup salad tomatoes garlic onions rice noodles curry tacos burger cake "
                "cookies chocolate coffee tea breakfast dinner lunch recipe oven kitchen sauce butter lemon honey "
                "pancakes sandwich grill dessert avocado"
            ),
            "sport": _w(
                "match goal team coach league stadium referee striker keeper season training tennis football "
                "basketball marathon race medal score penalty derby trophy court pitch players gym sprint cup final "
                "tournament champion victory"
            ),
            "travel": _w(
                "flight airport hotel beach island passport luggage suitcase map museum castle mountains lake "
                "village road trip journey holiday sunset ferry train cruise hostel backpack tickets guide cathedral "
                "harbour desert valley coast"
            ),
            "music": _w(
                "song album concert guitar piano drums singer band lyrics chorus melody rhythm festival playlist "
                "vinyl violin jazz rock stage tour headphones bass choir rehearsal microphone record tune orchestra "
                "remix encore"
            ),
            "pets": _w(
                "dog cat puppy kitten leash collar vet walk treats paws tail fur bark parrot hamster rabbit "
                "goldfish aquarium cage bowl toy fetch groom bath whiskers litter kibble nap shelter adoption tortoise"
            ),
            "family": _w(
                "mum dad kids baby grandma grandpa sister brother cousin aunt uncle wedding birthday anniversary "
                "picnic garden home sofa photos memories party nephew niece twins hug family cousins reunion "
                "christmas daughter son"
            ),
            "weather": _w(
                "rain snow sunshine clouds storm thunder wind fog frost heat umbrella forecast temperature humid "
                "breeze drizzle hail rainbow puddles winter summer autumn spring cold warm sunny cloudy chilly "
                "degrees icy lightning"
            ),
            "work": _w(
                "office meeting deadline project boss colleagues email laptop report presentation client contract "
                "salary promotion interview schedule budget desk spreadsheet manager shift overtime career agenda "
                "invoice printer intern company task payroll"
            ),
            "shopping": _w(
                "store shoes jacket dress bag jeans shirt receipt cart size brand checkout fitting boutique "
                "sneakers scarf hat coat wallet watch sunglasses perfume necklace earrings outfit trousers socks "
                "refund queue bargain"
            ),
        },
        explicit={
            "violence": _w("kill stab shoot blood attack murder slaughter behead strangle massacre bleed torture"),
            "nudity": _w("naked nude nudes explicit uncensored topless nsfw lewd xxx undressed"),
            "hate": _w("vermin filth subhuman invaders parasites scum cockroaches degenerates leeches"),
            "spam": _w("free winner click crypto giveaway prize link bitcoin cash claim bonus guaranteed"),
        },
        mild={
            "violence": _w("fight hurt punch revenge weapon smash choke wreck bruised threaten"),
            "nudity": _w("sexy hot spicy steamy lingerie bikini seductive sultry provocative revealing"),
            "hate": _w("swarming infesting breeding plague disgusting ruining invading infested vile dirty"),
            "spam": _w("deal offer limited dm follow subscribe promo discount exclusive hurry"),
        },
        decoys={
            "violence": _p("""
                kill time
                photo shoot
                blood orange
                counter attack
                take a stab at it
                the match was a massacre
            """),
            "nudity": _p("""
                naked eye
                nude lipstick
                explicit instructions
                the naked truth
                nude heels
            """),
            "hate": _p("""
                the dog had parasites
                space invaders
                pond scum
                cockroaches in the kitchen
                leeches in the lake
            """),
            "spam": _p("""
                free time
                free shipping
                free refills
                the winner of the race
                first prize at the fair
                cash only
            """),
        },
        groups=_w(
            "neighbours tourists students fans drivers cyclists commuters gamers landlords tenants joggers campers"
        ),
        places=_p("""
            tonight
            tomorrow night
            at the station
            after school
            at the parking lot
            near the bridge
            on the corner
            at midnight
            by the gate
            at the plaza
        """),
    ),
    "es": Lexicon(
        function=_w(
            "el la los las un una mi mis nuestro nuestra este esta ese con y para en de del al a muy hoy ya todo "
            "todos algo nuevo nueva buen buena gran me nos es fue son hay pero también después antes otra vez más "
            "poco primer último cada que por sin"
        ),
        topics={
            "food": _w(
                "pasta pizza pan queso sopa ensalada tomates ajo cebolla arroz fideos tacos paella tortilla pastel "
                "galletas chocolate café té desayuno cena almuerzo receta horno cocina salsa mantequilla limón miel "
                "bocadillo postre aguacate empanadas"
            ),
            "sport": _w(
                "partido gol equipo entrenador liga estadio árbitro delantero portero temporada entrenamiento tenis "
                "fútbol baloncesto maratón carrera medalla marcador penalti derbi trofeo cancha campo gimnasio copa "
                "final torneo campeón victoria remate"
            ),
            "travel": _w(
                "vuelo aeropuerto hotel playa isla pasaporte equipaje maleta mapa museo castillo montañas lago "
                "pueblo carretera viaje vacaciones atardecer ferry tren crucero albergue mochila billetes guía "
                "catedral puerto desierto valle costa"
            ),
            "music": _w(
                "canción álbum concierto guitarra piano batería cantante banda letra estribillo melodía ritmo "
                "festival lista vinilo violín jazz rock escenario gira entradas auriculares bajo coro ensayo "
                "micrófono disco orquesta remix flamenco"
            ),
            "pets": _w(
                "perro gato cachorro gatito correa collar veterinario paseo chuches patas cola pelo ladrar loro "
                "hámster conejo pez acuario jaula cuenco juguete baño bigotes arena pienso siesta refugio adopción "
                "tortuga hueso"
            ),
            "family": _w(
                "mamá papá niños bebé abuela abuelo hermana hermano primo tía tío boda cumpleaños aniversario picnic "
                "jardín casa sofá fotos recuerdos fiesta sobrino sobrina gemelos abrazo familia primos reunión "
                "navidad hija hijo"
            ),
            "weather": _w(
                "lluvia nieve sol nubes tormenta trueno viento niebla escarcha calor paraguas pronóstico temperatura "
                "húmedo brisa llovizna granizo arcoíris charcos invierno verano otoño primavera frío templado "
                "soleado nublado fresco grados hielo relámpago"
            ),
            "work": _w(
                "oficina junta plazo proyecto jefe compañeros correo portátil informe presentación cliente contrato "
                "sueldo ascenso entrevista horario presupuesto escritorio calendario gerente turno horas agenda "
                "factura impresora becario empresa tarea nómina jornada"
            ),
            "shopping": _w(
                "tienda zapatos chaqueta vestido bolso vaqueros camisa recibo carrito talla marca caja probador "
                "boutique zapatillas bufanda sombrero abrigo cartera reloj gafas perfume pendientes conjunto "
                "pantalones calcetines devolución ganga pedido escaparate"
            ),
        },
        explicit={
            "violence": _w("matar apuñalar disparar sangre atacar ataque asesinar masacre degollar torturar sangrar"),
            "nudity": _w("desnudo desnuda desnudas explícito explícitas porno xxx topless nsfw lascivo"),
            "hate": _w(
                "alimañas escoria parásitos invasores subhumanos cucarachas sanguijuelas degenerados inmundicia"
            ),
            "spam": _w("gratis ganador premio enlace clic cripto bitcoin sorteo dinero bono reclama garantizado"),
        },
        mild={
            "violence": _w("pelea pelear golpear venganza arma destrozar herir puñetazo amenaza aplastar"),
            "nudity": _w("sexy caliente picante lencería bikini provocativa sensual atrevida ardiente seductora"),
            "hate": _w("plaga infestan invaden asquerosos sucios arruinan enjambre echarlos fuera expulsarlos"),
            "spam": _w("oferta descuento promo limitado exclusivo síguenos suscríbete aprovecha rebajas urgente"),
        },
        decoys={
            "violence": _p("""
                matar el tiempo
                donar sangre
                el partido fue una masacre
                disparar fotos
                un ataque de risa
            """),
            "nudity": _p("""
                a ojo desnudo
                un árbol desnudo
                instrucciones explícitas
                la verdad desnuda
            """),
            "hate": _p("""
                el perro tenía parásitos
                invasores del espacio
                cucarachas en la cocina
                sanguijuelas en el lago
                escoria volcánica
            """),
            "spam": _p("""
                envío gratis
                entrada gratis
                el ganador de la carrera
                primer premio en la feria
                dinero en efectivo
            """),
        },
        groups=_w(
            "vecinos turistas estudiantes aficionados conductores ciclistas jugadores caseros inquilinos corredores "
            "campistas patinadores"
        ),
        places=_p("""
            esta noche
            mañana por la noche
            en la estación
            después del colegio
            en el aparcamiento
            cerca del puente
            en la esquina
            a medianoche
            junto a la puerta
            en la plaza
        """),
    ),
    "fr": Lexicon(
        function=_w(
            "le la les un une mon ma mes notre nos ce cette avec et pour à au aux dans sur de des du très vraiment "
            "juste tout tous nouveau bon bonne grand super il elle on nous je est était sont après avant encore "
            "puis plus petit premier dernier chaque mais aussi sans son vers"
        ),
        topics={
            "food": _w(
                "pâtes pizza pain fromage soupe salade tomates ail oignons riz nouilles crêpes quiche gâteau biscuits "
                "chocolat café thé déjeuner dîner goûter recette four cuisine sauce beurre citron miel sandwich "
                "dessert croissant baguette ratatouille"
            ),
            "sport": _w(
                "match but équipe entraîneur ligue stade arbitre attaquant gardien saison entraînement tennis "
                "football basket marathon course médaille score penalty derby trophée terrain gymnase coupe finale "
                "tournoi champion victoire sprint maillot"
            ),
            "travel": _w(
                "vol aéroport hôtel plage île passeport bagages valise carte musée château montagnes lac village "
                "route voyage vacances horizon ferry train croisière auberge randonnée billets guide cathédrale port "
                "désert vallée côte falaise"
            ),
            "music": _w(
                "chanson album concert guitare piano batterie chanteur groupe paroles refrain mélodie rythme festival "
                "playlist vinyle violon jazz rock scène tournée casque basse chorale répétition micro disque "
                "orchestre remix accordéon opéra"
            ),
            "pets": _w(
                "chien chat chiot chaton laisse collier vétérinaire promenade friandises pattes queue poils aboyer "
                "perroquet hamster lapin poisson aquarium cage gamelle jouet balle toilettage moustaches litière "
                "croquettes sieste refuge adoption tortue os"
            ),
            "family": _w(
                "maman papa enfants bébé mamie papi soeur frère cousin tante oncle mariage anniversaire famille "
                "jardin maison canapé photos souvenirs fête neveu nièce jumeaux câlin cousins retrouvailles noël "
                "fille fils berceau"
            ),
            "weather": _w(
                "pluie neige soleil nuages orage tonnerre vent brouillard givre chaleur parapluie météo température "
                "humide brise bruine grêle éclaircie flaques hiver été automne printemps froid doux ensoleillé "
                "nuageux frais degrés verglas éclair"
            ),
            "work": _w(
                "bureau réunion échéance projet patron collègues mail ordinateur rapport présentation client contrat "
                "salaire promotion entretien planning budget dossier tableur directeur horaires heures carrière "
                "agenda facture imprimante stagiaire entreprise tâche équipe"
            ),
            "shopping": _w(
                "magasin chaussures veste robe sac jean chemise ticket panier taille marque caisse cabine boutique "
                "baskets écharpe chapeau manteau portefeuille montre lunettes parfum boucles tenue pantalon "
                "chaussettes remboursement file commande vitrine"
            ),
        },
        explicit={
            "violence": _w("tuer poignarder tirer sang attaquer massacre égorger torturer étrangler saigner abattre"),
            "nudity": _w("nu nue nues nus explicite explicites porno xxx topless nsfw déshabillée obscène"),
            "hate": _w("vermine ordures parasites envahisseurs cafards sangsues dégénérés immondices nuisibles"),
            "spam": _w("gratuit gratuite gagnant cliquez crypto bitcoin lien argent bonus garanti réclamez jackpot"),
        },
        mild={
            "violence": _w("bagarre frapper vengeance arme détruire blesser écraser menace cogner casser"),
            "nudity": _w("sexy chaude coquine lingerie bikini sensuelle torride provocante osée séduisante"),
            "hate": _w("fléau infestent envahissent dégoûtants sales ruinent pullulent dehors expulser grouillent"),
            "spam": _w("offre promo réduction limitée exclusif abonnez profitez urgent cadeau soldes"),
        },
        decoys={
            "violence": _p("""
                tuer le temps
                donner son sang
                le match était un massacre
                tirer au but
            """),
            "nudity": _p("""
                pieds nus
                un mur nu
                des consignes explicites
                la vérité toute nue
            """),
            "hate": _p("""
                le chien avait des parasites
                les envahisseurs spatiaux
                cafards dans la cuisine
                sangsues dans le lac
                ordures ménagères
            """),
            "spam": _p("""
                livraison gratuite
                entrée gratuite
                le gagnant de la course
                argent de poche
                le lien vers la recette
            """),
        },
        groups=_w(
            "voisins touristes étudiants supporters conducteurs cyclistes joueurs propriétaires locataires joggeurs "
            "campeurs skateurs"
        ),
        places=_p("""
            ce soir
            demain soir
            à la gare
            après les cours
            au parking
            près du pont
            au coin de la rue
            à minuit
            devant la porte
            sur la place
        """),
    ),
}


def vocabulary(language: str) -> set[str]:
    """Every word the world can write in `language`; ValueError for a language it does not write."""
    if language not in LEXICONS:
        raise ValueError(f"unknown language {language!r}: the world writes {', '.join(LANGUAGES)}")
    lex = LEXICONS[language]
    words = set(lex.function) | set(lex.groups)
    for phrases in (lex.places, *lex.decoys.values()):
        words.update(w for phrase in phrases for w in phrase.split())
    for lists in (lex.topics, lex.explicit, lex.mild):
        words.update(w for terms in lists.values() for w in terms)
    return words


def _shapes(names: tuple[str, ...]) -> np.ndarray:
    return np.asarray([SHAPES.index(name) for name in names])


def _shape(name: str) -> int:
    return SHAPES.index(name)


def _colour(name: str) -> int:
    return COLOUR_NAMES.index(name)


@dataclass
class HarmfulWorld:
    n_authors: int = 20_000
    n_posts: int = 120_000
    n_days: int = 30
    n_hand_labelled: int = 6_000
    image_size: int = 32
    image_rate: float = 0.7  # of posts: with an image
    seed: int = 0
    start: str = "2026-01-01"
    language_share: tuple[float, ...] = (0.55, 0.3, 0.15)  # of authors, in LANGUAGES order
    prevalence: tuple[float, ...] = (0.03, 0.02, 0.025, 0.06)  # of posts truly harmful, in CATEGORIES order
    bad_actor_rate: float = 0.03  # of authors
    bad_actor_specialty: tuple[float, ...] = (0.2, 0.15, 0.2, 0.45)  # bad actors' main category
    bad_actor_harm_rate: float = 0.5  # of a bad actor's posts: intending harm of its specialty
    bad_actor_other_boost: float = 3.0  # a bad actor's rate of its other categories, times a normal author's
    edginess_sigma: float = 0.7  # normal authors' propensity to harm: lognormal with mean 1
    spam_overlap: float = 0.15  # of spam-intent posts: also nudity (porn spam)
    hate_overlap: float = 0.2  # of hate-intent posts: also violence (calls to violence)
    combination_share: float = 0.16  # of hate and of violence intents: carried by the text-image pair only
    explicit_motif_rate: float = 0.5  # an explicit post's image also shows the motif
    decoy_rate: float = 0.06  # of posts: a harmful-looking word in a benign phrase
    mild_background_rate: float = 0.03  # of posts: a mild term, whatever their truth
    group_rate: float = 0.25  # of posts: a group noun
    place_rate: float = 0.2  # of posts: a time or place
    sticker_rate: float = 0.3  # of images: a sticker of any benign (shape, colour)
    vermin_rate: float = 0.25  # of images: the vermin sticker (a popular one), instead of any other
    report_rate: tuple[float, ...] = (0.5, 1.2, 0.15, 1.2)  # expected reports on a harmful post (median reach)
    false_report_rate: float = 0.004  # the same for a benign post
    report_delay_days: float = 0.7  # median delay of a report after its post; lognormal
    report_delay_sigma: float = 1.2
    annotator_error: float = 0.0  # hand labels: each (post, category) label flipped with this probability
    _authors_cache: dict | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, size in (("language_share", len(LANGUAGES)), ("prevalence", len(CATEGORIES))):
            if len(getattr(self, name)) != size:
                raise ValueError(f"{name} needs {size} values")
        self.evidence_share_ = self._evidence_shares()
        for category, share in zip(CATEGORIES, self.evidence_share_, strict=True):
            if (share[IMAGE] + share[COMBINATION]) / self.image_rate > 1:
                raise ValueError(f"image_rate {self.image_rate} too low for {category}'s image-only evidence")

    def _evidence_shares(self) -> np.ndarray:
        """(categories, EVIDENCE) shares of a category's harmful-intent posts per way of carrying it (none: 0)."""
        shares = np.zeros((len(CATEGORIES), len(EVIDENCE)))
        for c, category in enumerate(CATEGORIES):
            combination = self.combination_share if c in (VIOLENCE, HATE) else 0.0
            shares[c, [EXPLICIT, MILD, IMAGE]] = np.asarray(EVIDENCE_SHARE[category]) * (1 - combination)
            shares[c, COMBINATION] = combination
        return shares

    # ---- the whole world ---------------------------------------------------------------------------------------
    def generate(self) -> dict[str, pd.DataFrame]:
        """authors, posts (text, image latents, interactions, truth), reports (post_id, reported_at, category)
        and hand_labelled (post_id, split, one 0/1 column per category)."""
        rng = np.random.default_rng(self.seed)
        authors = self._authors(rng)
        posts = self._posts(rng, authors, self.n_posts, 0, self.n_days)
        evidence, inserts, image, truth, p = self._content(rng, posts, authors)
        interactions = self._interactions(rng, posts, authors, truth)
        reports = self._reports(rng, posts, interactions, truth, inserts)
        table = self._posts_table(posts, image, interactions, reports, evidence, truth, p)
        return {
            "authors": authors["table"],
            "posts": table,
            "reports": reports,
            "hand_labelled": self._hand_labels(rng, truth),
        }

    def _content(self, rng: np.random.Generator, posts: pd.DataFrame, authors: dict) -> tuple:
        """What the posts say and show, and their truth: (evidence, the text plan, image latents, truth, p). Sets
        posts["text"]."""
        evidence = self._evidence(rng, posts, authors)
        inserts = self._text_plan(rng, posts, evidence)
        second_term = (evidence == EXPLICIT) & (rng.random(evidence.shape) < SECOND_TERM_RATE)
        posts["text"] = self._texts(rng, posts, evidence, inserts, second_term)
        image = self._images_latents(rng, posts, evidence, inserts)
        corroboration = second_term.astype(np.int64) + ((evidence == EXPLICIT) & motifs_shown(image))
        p = _harm_probability(evidence, corroboration)
        truth = (rng.random(p.shape) < p).astype(np.int8)
        return evidence, inserts, image, truth, p

    # ---- days after the logs (the online simulator's, systems/harmful/online.py) ------------------------------------
    def day_posts(self, day: int, n: int, rng: np.random.Generator, first_post_id: int) -> pd.DataFrame:
        """The posts of one day after the logs (day >= n_days, counted from the start): the same authors (their
        rates, favourite topics, intents), drawn as generate draws the logs' posts, ids from first_post_id on. The
        posts table's columns, interactions those of the post's whole life without moderation (no reports yet:
        n_reports 0), and what reports on it are drawn from (REPORT_INPUTS)."""
        authors = self._author_state()
        posts = self._posts(rng, authors, n, day, 1, first_post_id)
        evidence, plan, image, truth, p = self._content(rng, posts, authors)
        interactions = self._interactions(rng, posts, authors, truth)
        no_reports = pd.DataFrame({"post_id": np.zeros(0, dtype=np.int64)})
        table = self._posts_table(posts, image, interactions, no_reports, evidence, truth, p)
        return table.assign(topic=posts["topic"].to_numpy(), **{name: plan[name] for name in REPORT_INPUTS[1:]})

    def _author_state(self) -> dict:
        """The authors as generate draws them (and their favourite topics, which it draws with the posts): the
        first draws of the world's generator, replayed."""
        if self._authors_cache is None:
            rng = np.random.default_rng(self.seed)
            authors = self._authors(rng)
            self._posts(rng, authors, self.n_posts, 0, self.n_days)
            self._authors_cache = authors
        return self._authors_cache

    def report_draws(
        self,
        rng: np.random.Generator,
        posts: Mapping[str, np.ndarray],
        impressions: np.ndarray,
        median_impressions: float,
    ) -> dict[str, np.ndarray]:
        """Every report users would file on posts seen `impressions` times over their life, drawn as generate
        draws the logs' reports, whenever they come (not cut at any end, not sorted): post_id, reported_at
        (datetime64, UTC), category. `posts`: columns as arrays, post_id, created_at (datetime64, UTC), the truth
        (true_*) and REPORT_INPUTS; `median_impressions`: the logs' median reach (more viewers, more reporters)."""
        truth = np.column_stack([posts[f"true_{c}"] for c in CATEGORIES])
        plan = {name: np.asarray(posts[name]) for name in REPORT_INPUTS[1:]}
        created = np.asarray(posts["created_at"], dtype="datetime64[ns]")
        row, reported_at, category = self._draw_reports(
            rng, np.asarray(posts["topic"]), created, np.asarray(impressions), median_impressions, truth, plan
        )
        return {"post_id": np.asarray(posts["post_id"])[row], "reported_at": reported_at, "category": category}

    def seen_share(self, days: np.ndarray) -> np.ndarray:
        """The share of a post's impressions seen within `days` of its posting: its viewers come at the pace its
        reporters do (the report delay's lognormal), so a post taken down at its first report lost the rest."""
        days = np.maximum(np.asarray(days, dtype=np.float64), 1e-12)
        z = (np.log(days) - np.log(self.report_delay_days)) / self.report_delay_sigma
        return ndtr(z)

    # ---- authors -----------------------------------------------------------------------------------------------
    def _authors(self, rng: np.random.Generator) -> dict:
        n = self.n_authors
        bad = rng.random(n) < self.bad_actor_rate
        specialty = np.where(bad, rng.choice(len(CATEGORIES), n, p=self.bad_actor_specialty), -1)
        spammer = specialty == SPAM
        s = self.edginess_sigma
        edginess = np.where(bad, 1.0, rng.lognormal(-0.5 * s * s, s, n))
        language = rng.choice(len(LANGUAGES), n, p=self.language_share)
        country = np.empty(n, dtype=object)
        for lang, name in enumerate(LANGUAGES):
            rows = np.flatnonzero(language == lang)
            names, shares = zip(*LANGUAGE_COUNTRIES[name].items(), strict=True)
            country[rows] = np.asarray(names, dtype=object)[rng.choice(len(names), len(rows), p=shares)]
        # Bad actors post more, spammers most; the scale makes the expected total n_posts.
        rate = rng.lognormal(-0.32, 0.8, n) * np.where(spammer, 4.0, np.where(bad, 2.5, 1.0))
        rate *= self.n_posts / (self.n_days * rate.sum())

        def lean(normal: tuple[float, float], bad_actor: tuple[float, float], spam: tuple[float, float]) -> np.ndarray:
            """Lognormal draws, (median, sigma) per kind of author: wide enough to overlap."""
            median = np.where(spammer, spam[0], np.where(bad, bad_actor[0], normal[0]))
            sigma = np.where(spammer, spam[1], np.where(bad, bad_actor[1], normal[1]))
            return np.exp(np.log(median) + sigma * rng.standard_normal(n))

        table = pd.DataFrame(
            {
                "author_id": np.arange(n),
                "language": np.asarray(LANGUAGES)[language],
                "country": country.astype(str),
                "account_age_days": np.clip(lean((700, 1.2), (150, 1.2), (90, 1.2)), 1, 6_000).astype(np.int64),
                "followers": lean((150, 1.3), (90, 1.4), (40, 1.5)).astype(np.int64),
                "following": lean((200, 1.0), (400, 1.0), (1_500, 0.8)).astype(np.int64),
                "violation_count": rng.poisson(np.where(bad, 1.2, 0.1 * edginess)),
                "report_count": rng.poisson(np.where(bad, 3.0, 0.3 * edginess)),
                # As measured over the month before the world: the true rate, noisily.
                "posting_rate": np.round(rate * rng.lognormal(0.0, 0.3, n), 3),
                "true_bad_actor": bad,
                "true_specialty": np.where(bad, np.asarray(CATEGORIES)[np.maximum(specialty, 0)], "none"),
            }
        )
        return {"table": table, "bad": bad, "specialty": specialty, "edginess": edginess, "rate": rate}

    # ---- posts: who, when, what about --------------------------------------------------------------------------
    def _posts(
        self, rng: np.random.Generator, authors: dict, n: int, first_day: int, n_days: int, first_id: int = 0
    ) -> pd.DataFrame:
        """n posts over n_days days from first_day on. The authors' favourite topics are drawn with the first
        posts (in the middle of them, as the logs were drawn) and kept in `authors` for later days."""
        author = rng.choice(self.n_authors, n, p=authors["rate"] / authors["rate"].sum())
        hours = np.arange(24)
        hour_share = 0.3 + np.exp(-((hours - 20) ** 2) / 18) + 0.5 * np.exp(-((hours - 12) ** 2) / 8)
        day = first_day + rng.integers(0, n_days, n)
        seconds = day * 86_400 + rng.choice(24, n, p=hour_share / hour_share.sum()) * 3_600 + rng.integers(0, 3_600, n)
        order = np.argsort(seconds, kind="stable")  # post ids follow time, as real id sequences do
        author, seconds, day = author[order], seconds[order], day[order]
        language = authors["table"]["language"].to_numpy()[author]
        # A post is mostly about its author's favourite topic.
        if "favourite" not in authors:
            authors["favourite"] = rng.integers(0, len(TOPICS), self.n_authors)
        favourite = authors["favourite"]
        topic = np.where(rng.random(n) < 0.5, favourite[author], rng.integers(0, len(TOPICS), n))
        return pd.DataFrame(
            {
                "post_id": first_id + np.arange(n),
                "author_id": author,
                "created_at": pd.Timestamp(self.start, tz="UTC") + pd.to_timedelta(seconds, unit="s"),
                "day": day,
                "language": language,
                "topic": topic,
                "has_image": rng.random(n) < self.image_rate,
            }
        )

    # ---- harm: intent, then the way each category's evidence is carried ---------------------------------------
    def _intent(self, rng: np.random.Generator, posts: pd.DataFrame, authors: dict) -> np.ndarray:
        """(n, categories) bool: the post means harm of that category. Rates are calibrated so that the expected
        prevalence is `prevalence`; bad actors get a fixed rate on their specialty."""
        author = posts["author_id"].to_numpy()
        specialty, bad = authors["specialty"][author], authors["bad"][author]
        mean_harm = self.evidence_share_[:, 1:] @ np.asarray([EVIDENCE_HARM[e] for e in EVIDENCE[1:]])
        target = np.asarray(self.prevalence) / mean_harm  # intent rate per category
        independent = target.copy()  # the part not brought in by the overlaps
        independent[NUDITY] -= self.spam_overlap * target[SPAM]
        independent[VIOLENCE] -= self.hate_overlap * target[HATE]
        if (independent < 0).any():
            raise ValueError("overlaps larger than the prevalence they feed")
        n = len(posts)
        intent = np.zeros((n, len(CATEGORIES)), dtype=bool)
        for c in range(len(CATEGORIES)):
            own = specialty == c
            weight = np.where(bad, self.bad_actor_other_boost, authors["edginess"][author])
            weight[own] = 0.0
            base = max(n * independent[c] - own.sum() * self.bad_actor_harm_rate, 0.0) / weight.sum()
            rate = np.where(own, self.bad_actor_harm_rate, np.minimum(base * weight, 0.9))
            intent[:, c] = rng.random(n) < rate
        intent[:, NUDITY] |= intent[:, SPAM] & (rng.random(n) < self.spam_overlap)
        intent[:, VIOLENCE] |= intent[:, HATE] & (rng.random(n) < self.hate_overlap)
        return intent

    def _evidence(self, rng: np.random.Generator, posts: pd.DataFrame, authors: dict) -> np.ndarray:
        """(n, categories) index into EVIDENCE: how the post carries each category's harm (NONE: it does not)."""
        intent = self._intent(rng, posts, authors)
        has_image = posts["has_image"].to_numpy()
        evidence = np.zeros(intent.shape, dtype=np.int64)
        for c in range(len(CATEGORIES)):
            share = self.evidence_share_[c]
            with_image = share.copy()
            with_image[[IMAGE, COMBINATION]] /= self.image_rate
            text_only = share[[EXPLICIT, MILD]] / share[[EXPLICIT, MILD]].sum()
            with_image[[EXPLICIT, MILD]] = text_only * (1 - with_image[[IMAGE, COMBINATION]].sum())
            without = np.zeros(len(EVIDENCE))
            without[[EXPLICIT, MILD]] = text_only
            probabilities = np.where(has_image[:, None], with_image, without)
            evidence[:, c] = np.where(intent[:, c], draw_rows(rng, probabilities), NONE)
        # A post harmful through a combination carries nothing else: its text and its image stay benign.
        combined = (evidence == COMBINATION).any(1)
        evidence[combined[:, None] & (evidence != COMBINATION)] = NONE
        # One object and one sticker per image: a second category wanting the same one says it in words.
        for first, second in ((VIOLENCE, NUDITY), (HATE, SPAM)):
            clash = (evidence[:, first] >= IMAGE) & (evidence[:, second] == IMAGE)
            evidence[clash, second] = EXPLICIT
        return evidence

    # ---- text ----------------------------------------------------------------------------------------------------
    def _text_plan(self, rng: np.random.Generator, posts: pd.DataFrame, evidence: np.ndarray) -> dict[str, np.ndarray]:
        """What each text holds beyond its topic words: background inserts drawn for every post alike, and the
        group noun or time/place that a combination forces."""
        n = len(posts)
        plan = {
            "decoy": rng.random(n) < self.decoy_rate,
            "decoy_category": rng.integers(0, len(CATEGORIES), n),
            "mild": rng.random(n) < self.mild_background_rate,
            "mild_category": rng.integers(0, len(CATEGORIES), n),
            "group": rng.random(n) < self.group_rate,
            "place": rng.random(n) < self.place_rate,
        }
        plan["group"] |= evidence[:, HATE] == COMBINATION
        plan["place"] |= evidence[:, VIOLENCE] == COMBINATION
        return plan

    def _texts(
        self,
        rng: np.random.Generator,
        posts: pd.DataFrame,
        evidence: np.ndarray,
        plan: dict[str, np.ndarray],
        second_term: np.ndarray,
    ) -> list[str]:
        n = len(posts)
        base = _topic_words(rng, posts["language"].to_numpy(), posts["topic"].to_numpy())  # (n, MAX_WORDS)
        length = rng.integers(6, MAX_WORDS + 1, n)
        picks = rng.random((n, 16))  # uniform draws that choose each insert's word or phrase
        where = rng.random((n, 12))  # and where it goes
        texts = []
        for i, language in enumerate(posts["language"].to_numpy()):
            lex, u = LEXICONS[language], picks[i]
            inserts = []
            if plan["decoy"][i]:
                inserts.append(_pick(lex.decoys[CATEGORIES[plan["decoy_category"][i]]], u[0]))
            if plan["mild"][i]:
                inserts.append(_pick(lex.mild[CATEGORIES[plan["mild_category"][i]]], u[1]))
            if plan["group"][i]:
                inserts.append(_pick(lex.groups, u[2]))
            if plan["place"][i]:
                inserts.append(_pick(lex.places, u[3]))
            for c, category in enumerate(CATEGORIES):
                if evidence[i, c] == EXPLICIT:
                    terms = lex.explicit[category]
                    first = int(u[4 + 2 * c] * len(terms))
                    inserts.append(terms[first])
                    if second_term[i, c]:  # a second, different term
                        inserts.append(terms[(first + 1 + int(u[5 + 2 * c] * (len(terms) - 1))) % len(terms)])
                elif evidence[i, c] == MILD:
                    inserts.append(_pick(lex.mild[category], u[12 + c]))
            # The topic words fill what the inserts leave, so a text's length says nothing about them.
            n_inserted = sum(phrase.count(" ") + 1 for phrase in inserts)
            units = list(base[i, : max(length[i] - n_inserted, 3)])
            for k, phrase in enumerate(inserts):  # a phrase is one unit: nothing lands inside "kill time"
                units.insert(int(where[i, k] * (len(units) + 1)), phrase)
            texts.append(" ".join(units))
        return texts

    # ---- images: latents only, pixels on demand -------------------------------------------------------------------
    def _images_latents(
        self, rng: np.random.Generator, posts: pd.DataFrame, evidence: np.ndarray, plan: dict[str, np.ndarray]
    ) -> pd.DataFrame:
        has_image = posts["has_image"].to_numpy()
        rows = np.flatnonzero(has_image)
        k = len(rows)
        ev = evidence[rows]
        shape = rng.integers(0, len(SHAPES), k)
        colour = rng.integers(0, len(COLOUR_NAMES), k)
        sticker = rng.random(k) < self.sticker_rate
        mark = np.where(sticker, rng.integers(0, len(SHAPES), k), -1)
        mark_colour = rng.integers(0, len(COLOUR_NAMES), k)
        vermin = rng.random(k) < self.vermin_rate
        mark[vermin], mark_colour[vermin] = _shape(VERMIN_MARK[0]), _colour(VERMIN_MARK[1])
        placed = np.zeros((k, len(CATEGORIES)), dtype=bool)  # the post shows this category's motif on purpose
        _avoid_motifs(rng, shape, colour, mark, mark_colour, placed)

        # Motifs: image-only evidence always, explicit evidence half of the time (when the slot is free).
        shows = rng.random((k, len(CATEGORIES))) < self.explicit_motif_rate
        for c, category in enumerate(CATEGORIES):
            slot, motif_shapes, motif_colour = MOTIFS[category]
            owner = VIOLENCE if slot == "object" else HATE  # its image-only evidence keeps the slot
            on = (ev[:, c] == IMAGE) | ((ev[:, c] == EXPLICIT) & shows[:, c])
            on &= (c == owner) | (ev[:, owner] < IMAGE)
            shapes, colours = (shape, colour) if slot == "object" else (mark, mark_colour)
            shapes[on], colours[on] = rng.choice(_shapes(motif_shapes), on.sum()), _colour(motif_colour)
            same_slot = [d for d, other in enumerate(CATEGORIES) if MOTIFS[other][0] == slot]
            placed[np.ix_(on, same_slot)] = False  # a category placed later takes the slot over
            placed[on, c] = True
        # Combinations: a benign-looking half each.
        weapon = ev[:, VIOLENCE] == COMBINATION
        shape[weapon] = rng.choice(_shapes(WEAPON_SHAPES), weapon.sum())
        not_red = np.delete(np.arange(len(COLOUR_NAMES)), _colour(MOTIFS["violence"][2]))
        colour[weapon] = rng.choice(not_red, weapon.sum())
        rat = ev[:, HATE] == COMBINATION
        mark[rat], mark_colour[rat] = _shape(VERMIN_MARK[0]), _colour(VERMIN_MARK[1])
        # Never both halves of a pair outside a combination: the pair alone is the harm.
        is_vermin = (mark == _shape(VERMIN_MARK[0])) & (mark_colour == _colour(VERMIN_MARK[1]))
        mark[is_vermin & plan["group"][rows] & ~rat] = -1
        armed = np.isin(shape, _shapes(WEAPON_SHAPES)) & (colour != _colour(MOTIFS["violence"][2]))
        reshape = armed & plan["place"][rows] & ~weapon
        shape[reshape] = rng.choice(np.setdiff1d(np.arange(len(SHAPES)), _shapes(WEAPON_SHAPES)), reshape.sum())
        _avoid_motifs(rng, shape, colour, mark, mark_colour, placed)  # a re-drawn shape may have made one
        mark_colour[mark < 0] = -1

        photos = Photos.sample(np.arange(k), rng)
        latents = {
            "image_shape": shape,
            "image_colour": colour,
            "image_accent": (colour + rng.integers(1, len(COLOUR_NAMES), k)) % len(COLOUR_NAMES),
            "image_texture": rng.integers(0, len(TEXTURES), k),
            "image_background": rng.integers(0, len(BACKGROUNDS), k),
            "image_rotation": photos.rotation,
            "image_scale": photos.scale,
            "image_shift_x": photos.shift_x,
            "image_shift_y": photos.shift_y,
            "image_brightness": photos.brightness,
            "image_contrast": photos.contrast,
            "image_noise": photos.noise,
            "image_flip": photos.flip,
            "image_mark": mark,
            "image_mark_colour": mark_colour,
            "image_corner": rng.integers(0, 4, k),  # the sticker's corner
            "image_seed": rng.integers(0, 2**31 - 1, k),  # the pixel noise's
        }
        n = len(posts)
        out = {}
        for name, values in latents.items():
            if values.dtype == bool:
                column = np.zeros(n, dtype=bool)
            elif values.dtype.kind == "f":
                column = np.full(n, np.nan, dtype=values.dtype)
            else:
                column = np.full(n, -1, dtype=np.int64)
            column[rows] = values
            out[name] = column
        return pd.DataFrame(out)

    def images(self, posts: pd.DataFrame, chunk: int = 4_096) -> np.ndarray:
        """(len(posts), image_size, image_size, 3) uint8: the posts' images, the same pixels whichever posts are
        rendered together. Every post must have an image (has_image)."""
        if not posts["has_image"].all():
            raise ValueError("some posts have no image: select posts[posts.has_image] first")
        out = np.empty((len(posts), self.image_size, self.image_size, 3), dtype=np.uint8)
        for lo in range(0, len(posts), chunk):
            out[lo : lo + chunk] = _render_posts(posts.iloc[lo : lo + chunk], self.image_size)
        return out

    # ---- interactions and reports ---------------------------------------------------------------------------------
    def _interactions(
        self, rng: np.random.Generator, posts: pd.DataFrame, authors: dict, truth: np.ndarray
    ) -> pd.DataFrame:
        n = len(posts)
        followers = authors["table"]["followers"].to_numpy()[posts["author_id"].to_numpy()]

        def boost(factors: tuple[float, ...]) -> np.ndarray:
            return np.prod(np.where(truth == 1, np.asarray(factors), 1.0), axis=1)

        reach = 20 + 0.5 * followers * rng.lognormal(-0.5, 1.0, n)
        impressions = rng.poisson(reach * boost(IMPRESSION_BOOST))
        return pd.DataFrame(
            {
                "impressions": impressions,
                "likes": rng.poisson(impressions * 0.04 * boost(LIKE_BOOST)),
                "comments": rng.poisson(impressions * 0.008 * boost(COMMENT_BOOST)),
                "shares": rng.poisson(impressions * 0.004 * boost(SHARE_BOOST)),
            }
        )

    def _reports(
        self,
        rng: np.random.Generator,
        posts: pd.DataFrame,
        interactions: pd.DataFrame,
        truth: np.ndarray,
        plan: dict[str, np.ndarray],
    ) -> pd.DataFrame:
        impressions = interactions["impressions"].to_numpy()
        created = posts["created_at"].values  # datetime64[ns], UTC
        post, reported_at, category = self._draw_reports(
            rng, posts["topic"].to_numpy(), created, impressions, np.median(impressions), truth, plan
        )
        reports = pd.DataFrame(
            {"post_id": post, "reported_at": pd.to_datetime(reported_at, utc=True), "category": category}
        )
        end = pd.Timestamp(self.start, tz="UTC") + pd.Timedelta(days=self.n_days)
        reports = reports[reports["reported_at"] < end]  # observed at the world's end
        return reports.sort_values(["reported_at", "post_id"], kind="stable").reset_index(drop=True)

    def _draw_reports(
        self,
        rng: np.random.Generator,
        topic: np.ndarray,
        created: np.ndarray,
        impressions: np.ndarray,
        median_impressions: float,
        truth: np.ndarray,
        plan: dict[str, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every report on the posts, whenever it comes: (the post's row, reported_at: datetime64[ns] UTC, the
        category's name)."""
        exposure = np.sqrt(impressions / max(median_impressions, 1.0))  # more viewers, more reporters
        harmful = truth.any(1)
        looks_bad = plan["decoy"] | plan["mild"]
        disliked = np.isin(topic, [TOPICS.index("sport"), TOPICS.index("shopping")])
        false_rate = self.false_report_rate * np.where(looks_bad, 4.0, 1.0) * np.where(disliked, 3.0, 1.0)
        weights = truth * np.asarray(self.report_rate)
        expected = np.where(harmful, weights.sum(1), false_rate) * exposure
        count = rng.poisson(expected)

        # The category a report names: a harmful post's own (by how readily each is reported), sometimes another;
        # a benign post's by what it looks like.
        n, k = len(topic), len(CATEGORIES)
        suggested = np.where(
            plan["decoy"],
            plan["decoy_category"],
            np.where(
                plan["mild"],
                plan["mild_category"],
                np.where(
                    topic == TOPICS.index("shopping"),
                    SPAM,
                    np.where(rng.random(n) < 0.5, HATE, VIOLENCE),
                ),
            ),
        )
        benign_probability = 0.3 * FALSE_REPORT_SHARE + 0.7 * np.eye(k)[suggested]
        benign_probability[~looks_bad & ~disliked] = FALSE_REPORT_SHARE
        own = weights / np.maximum(weights.sum(1, keepdims=True), 1e-12)
        probability = np.where(
            harmful[:, None], (1 - MISATTRIBUTED) * own + MISATTRIBUTED * FALSE_REPORT_SHARE, benign_probability
        )
        post = np.repeat(np.arange(n), count)
        category = draw_rows(rng, probability[post])
        delay = rng.lognormal(np.log(self.report_delay_days), self.report_delay_sigma, len(post))
        reported_at = created[post] + pd.to_timedelta(delay * 86_400, unit="s").to_numpy()
        return post, reported_at, np.asarray(CATEGORIES)[category]

    # ---- tables ---------------------------------------------------------------------------------------------------
    def _posts_table(
        self,
        posts: pd.DataFrame,
        image: pd.DataFrame,
        interactions: pd.DataFrame,
        reports: pd.DataFrame,
        evidence: np.ndarray,
        truth: np.ndarray,
        p: np.ndarray,
    ) -> pd.DataFrame:
        table = posts[["post_id", "author_id", "created_at", "day", "language", "text", "has_image"]]
        table = pd.concat([table, image, interactions], axis=1)
        table["n_reports"] = np.bincount(reports["post_id"], minlength=len(posts))
        harmful_somehow = evidence != NONE
        table["combination_only"] = harmful_somehow.any(1) & ((evidence == COMBINATION) | ~harmful_somehow).all(1)
        for c, category in enumerate(CATEGORIES):
            table[f"evidence_{category}"] = np.asarray(EVIDENCE)[evidence[:, c]]
        for c, category in enumerate(CATEGORIES):
            table[f"true_{category}"] = truth[:, c]
        for c, category in enumerate(CATEGORIES):
            table[f"p_{category}"] = p[:, c]
        return table

    def _hand_labels(self, rng: np.random.Generator, truth: np.ndarray) -> pd.DataFrame:
        n = min(self.n_hand_labelled, len(truth))
        post = np.sort(rng.choice(len(truth), n, replace=False))
        split = np.where(rng.permutation(n) < n // 2, "validation", "test")
        labels = truth[post] ^ (rng.random((n, len(CATEGORIES))) < self.annotator_error)
        table = pd.DataFrame({"post_id": post, "split": split})
        for c, category in enumerate(CATEGORIES):
            table[category] = labels[:, c].astype(np.int8)
        return table


# ---- helpers -------------------------------------------------------------------------------------------------------
def _pick(options: tuple[str, ...], u: float) -> str:
    return options[int(u * len(options))]


def _zipf(size: int, exponent: float = 0.7) -> np.ndarray:
    """Cumulative Zipf-like shares over a list's order: a few words are common, most are rare, as in text."""
    weights = 1.0 / np.arange(2, size + 2) ** exponent
    return np.cumsum(weights / weights.sum())


def _topic_words(rng: np.random.Generator, language: np.ndarray, topic: np.ndarray) -> np.ndarray:
    """(n, MAX_WORDS) words: phrases of one function word and 1-2 content words, 90% of the content words from
    the post's topic and the rest from one other topic."""
    n = len(language)
    phrase = rng.integers(2, 4, (n, MAX_WORDS // 2))
    starts = np.cumsum(phrase, axis=1) - phrase
    is_function = np.zeros((n, MAX_WORDS + 3), dtype=bool)
    np.put_along_axis(is_function, np.minimum(starts, MAX_WORDS + 2), True, axis=1)
    is_function = is_function[:, :MAX_WORDS]
    other = (topic + rng.integers(1, len(TOPICS), n)) % len(TOPICS)
    word_topic = np.where(rng.random((n, MAX_WORDS)) < 0.9, topic[:, None], other[:, None])
    u = rng.random((n, MAX_WORDS))
    words = np.empty((n, MAX_WORDS), dtype=object)
    for name, lex in LEXICONS.items():
        ours = language[:, None] == name
        cells = ours & is_function
        words[cells] = np.asarray(lex.function, dtype=object)[np.searchsorted(_zipf(len(lex.function)), u[cells])]
        for t, topic_name in enumerate(TOPICS):
            terms = lex.topics[topic_name]
            cells = ours & ~is_function & (word_topic == t)
            words[cells] = np.asarray(terms, dtype=object)[np.searchsorted(_zipf(len(terms)), u[cells])]
    return words


def _avoid_motifs(
    rng: np.random.Generator,
    shape: np.ndarray,
    colour: np.ndarray,
    mark: np.ndarray,
    mark_colour: np.ndarray,
    placed: np.ndarray,
) -> None:
    """Re-colour (in place) objects and stickers that show a motif by chance: not `placed` (n, categories)."""
    for c, (slot, motif_shapes, motif_colour) in enumerate(MOTIFS.values()):
        shapes, colours = (shape, colour) if slot == "object" else (mark, mark_colour)
        hit = np.isin(shapes, _shapes(motif_shapes)) & (colours == _colour(motif_colour)) & ~placed[:, c]
        colours[hit] = (colours[hit] + rng.integers(1, len(COLOUR_NAMES), hit.sum())) % len(COLOUR_NAMES)


def _harm_probability(evidence: np.ndarray, corroboration: np.ndarray) -> np.ndarray:
    """(n, categories) P(truly harmful) given how each category's evidence is carried, and how many further
    pieces corroborate explicit evidence (each cuts the chance that it is benign by CORROBORATION)."""
    table = np.asarray([0.0] + [EVIDENCE_HARM[e] for e in EVIDENCE[1:]])
    return 1.0 - (1.0 - table[evidence]) * CORROBORATION**corroboration


def motifs_shown(image: pd.DataFrame) -> np.ndarray:
    """(n, categories) bool: the post's image shows the category's motif (no image: False)."""
    shown = np.zeros((len(image), len(CATEGORIES)), dtype=bool)
    for c, (slot, motif_shapes, motif_colour) in enumerate(MOTIFS.values()):
        shape, colour = ("image_shape", "image_colour") if slot == "object" else ("image_mark", "image_mark_colour")
        shown[:, c] = image[shape].isin(_shapes(motif_shapes)).to_numpy() & (image[colour] == _colour(motif_colour))
    return shown


# ---- rendering any subset of posts the same way -----------------------------------------------------------------
def _corners(length: int) -> np.ndarray:
    """The corner render(seed=RENDER_SEED) puts a sticker in at each call position 0..length-1: it draws them per
    block of NOISE_BLOCK positions from a generator seeded by (seed, block)."""
    blocks = -(-length // NOISE_BLOCK)
    draws = [np.random.default_rng([RENDER_SEED, b]).integers(0, 4, NOISE_BLOCK) for b in range(blocks)]
    return np.concatenate(draws)[:length] if draws else np.zeros(0, dtype=np.int64)


def _layout(corner: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """Call positions for photos so that each marked photo lands where render puts the sticker in its own
    corner; unmarked photos fill the gaps. Positions are distinct; the call needs max + 1 photos."""
    n = len(corner)
    length = n + 16
    while True:
        sequence = _corners(length)
        positions = np.full(n, -1, dtype=np.int64)
        free = np.ones(length, dtype=bool)
        for k in range(4):
            wanted = np.flatnonzero(marked & (corner == k))
            slots = np.flatnonzero(sequence == k)[: len(wanted)]
            if len(slots) < len(wanted):
                break
            positions[wanted], free[slots] = slots, False
        else:
            rest, slots = np.flatnonzero(~marked), np.flatnonzero(free)
            if len(slots) >= len(rest):
                positions[rest] = slots[: len(rest)]
                return positions
        length = int(length * 1.25) + 16


def _render_posts(posts: pd.DataFrame, size: int) -> np.ndarray:
    n = len(posts)
    column = {name: posts[f"image_{name}"].to_numpy() for name in ("shape", "colour", "mark", "corner", "seed")}
    objects = Objects(
        shape=column["shape"].astype(np.int64),
        colour=column["colour"].astype(np.int64),
        accent=posts["image_accent"].to_numpy().astype(np.int64),
        texture=posts["image_texture"].to_numpy().astype(np.int64),
        background=posts["image_background"].to_numpy().astype(np.int64),
    )
    marked = column["mark"] >= 0
    positions = _layout(column["corner"], marked)
    length = int(positions.max()) + 1 if n else 0
    row = np.zeros(length, dtype=np.int64)  # gaps repeat post 0's photo without a sticker
    row[positions] = np.arange(n)
    filler = np.ones(length, dtype=bool)
    filler[positions] = False

    def laid(name: str, dtype) -> np.ndarray:
        return posts[f"image_{name}"].to_numpy().astype(dtype)[row]

    photos = Photos(
        object_row=row,
        rotation=laid("rotation", np.float32),
        scale=laid("scale", np.float32),
        shift_x=laid("shift_x", np.float32),
        shift_y=laid("shift_y", np.float32),
        brightness=laid("brightness", np.float32),
        contrast=laid("contrast", np.float32),
        noise=np.zeros(length, dtype=np.float32),  # render's noise follows the call position: ours follows the post
        flip=laid("flip", bool),
        mark=np.where(filler, -1, laid("mark", np.int64)),
        mark_colour=np.where(filler, 0, np.maximum(laid("mark_colour", np.int64), 0)),
    )
    pixels = render(objects, photos, size=size, seed=RENDER_SEED)[positions].astype(np.float32)
    amplitude = posts["image_noise"].to_numpy().astype(np.float32) * np.float32(np.sqrt(3.0))  # uniform: std 1/sqrt 3
    pixels += amplitude[:, None, None, None] * _pixel_noise(column["seed"], size)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


@cache
def _noise_bank(size: int) -> np.ndarray:
    """(NOISE_FIELDS, size * size * 3 + NOISE_OFFSETS) float32 uniform in [-1, 1): fixed noise fields."""
    cells = size * size * 3 + NOISE_OFFSETS
    bank = np.random.default_rng([RENDER_SEED, size]).uniform(-1.0, 1.0, (NOISE_FIELDS, cells)).astype(np.float32)
    bank.setflags(write=False)
    return bank


def _pixel_noise(seeds: np.ndarray, size: int) -> np.ndarray:
    """(n, size, size, 3) float32 uniform in [-1, 1): a window into one of the fixed noise fields, both chosen by
    the post's seed, so its noise is the same whatever it is rendered with (and a gather: cheap)."""
    seeds = np.asarray(seeds, dtype=np.int64)
    field, offset = seeds % NOISE_FIELDS, (seeds // NOISE_FIELDS) % NOISE_OFFSETS
    windows = np.lib.stride_tricks.sliding_window_view(_noise_bank(size), size * size * 3, axis=1)  # a view
    return windows[field, offset].reshape(len(seeds), size, size, 3)
