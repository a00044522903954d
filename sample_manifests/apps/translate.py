"""A toy offline "translator": a Gradio app for the bulk-translation sample.

This is NOT machine translation. It looks English phrases and words up in a small
built-in table (a few dozen entries, French, Spanish and German) and leaves anything
it does not know unchanged. It exists so that the translation manifest has an app
to run against with no network: the batch machinery (inputs from a CSV, one call
per row, results on disk, resume) is exercised the same way as with a real model.

For a real run, point the manifest at a translation Space instead (any Gradio
Space with a text-in/text-out translation endpoint), and map its parameters.

Endpoint: ``/translate(text: str, target_language: "fr" | "es" | "de") -> str``.

Run it::

    GRADIO_SERVER_PORT=7862 python translate.py

``GRADIO_SERVER_NAME`` sets the host (default 127.0.0.1). ``translate()`` can be
imported and called without launching anything.
"""

import os
import re

import gradio as gr

LANGUAGES = ("fr", "es", "de")

# English -> (French, Spanish, German). Multi-word entries come first in matching
# (longest match wins), which is how the few idioms and article/gender pairs below
# ("the cat" -> "le chat" / "el gato" / "die Katze") come out right.
LEXICON: dict[str, tuple[str, str, str]] = {
    # greetings and courtesy
    "hello": ("bonjour", "hola", "hallo"),
    "goodbye": ("au revoir", "adiós", "auf Wiedersehen"),
    "good morning": ("bonjour", "buenos días", "guten Morgen"),
    "good evening": ("bonsoir", "buenas tardes", "guten Abend"),
    "good night": ("bonne nuit", "buenas noches", "gute Nacht"),
    "thank you very much": ("merci beaucoup", "muchas gracias", "vielen Dank"),
    "thank you": ("merci", "gracias", "danke"),
    "please": ("s'il vous plaît", "por favor", "bitte"),
    "excuse me": ("excusez-moi", "disculpe", "entschuldigung"),
    "see you tomorrow": ("à demain", "hasta mañana", "bis morgen"),
    "how are you": ("comment allez-vous", "cómo estás", "wie geht es dir"),
    "yes": ("oui", "sí", "ja"),
    "no": ("non", "no", "nein"),
    # whole phrases
    "please open the door": (
        "ouvrez la porte, s'il vous plaît",
        "abra la puerta, por favor",
        "bitte öffnen Sie die Tür",
    ),
    "the weather is nice today": (
        "il fait beau aujourd'hui",
        "hace buen tiempo hoy",
        "das Wetter ist heute schön",
    ),
    "i do not understand": ("je ne comprends pas", "no entiendo", "ich verstehe nicht"),
    "my name is": ("je m'appelle", "me llamo", "ich heiße"),
    "i would like": ("je voudrais", "quisiera", "ich hätte gern"),
    "a cup of coffee": ("une tasse de café", "una taza de café", "eine Tasse Kaffee"),
    "where is": ("où est", "dónde está", "wo ist"),
    "is on the table": ("est sur la table", "está sobre la mesa", "liegt auf dem Tisch"),
    "is hot": ("est chaud", "está caliente", "ist heiß"),
    "is cold": ("est froid", "está frío", "ist kalt"),
    "i love": ("j'aime", "me encantan", "ich liebe"),
    "i am": ("je suis", "estoy", "ich bin"),
    "we eat": ("nous mangeons", "comemos", "wir essen"),
    "i drink": ("je bois", "bebo", "ich trinke"),
    # nouns with their article
    "the train station": ("la gare", "la estación de tren", "der Bahnhof"),
    "the bathroom": ("la salle de bain", "el baño", "das Badezimmer"),
    "the cat": ("le chat", "el gato", "die Katze"),
    "the dog": ("le chien", "el perro", "der Hund"),
    "the book": ("le livre", "el libro", "das Buch"),
    "the coffee": ("le café", "el café", "der Kaffee"),
    "the table": ("la table", "la mesa", "der Tisch"),
    "the door": ("la porte", "la puerta", "die Tür"),
    "books": ("les livres", "los libros", "Bücher"),
    "bread": ("du pain", "pan", "Brot"),
    "cheese": ("du fromage", "queso", "Käse"),
    "water": ("de l'eau", "agua", "Wasser"),
    "coffee": ("du café", "café", "Kaffee"),
    # single words
    "is": ("est", "es", "ist"),
    "and": ("et", "y", "und"),
    "black": ("noir", "negro", "schwarz"),
    "small": ("petit", "pequeño", "klein"),
    "big": ("grand", "grande", "groß"),
    "red": ("rouge", "rojo", "rot"),
    "happy": ("heureux", "feliz", "glücklich"),
    "today": ("aujourd'hui", "hoy", "heute"),
    "tomorrow": ("demain", "mañana", "morgen"),
}

_MAX_PHRASE_WORDS = max(len(key.split()) for key in LEXICON)
# Words (with an inner apostrophe, as in "don't") or single punctuation marks.
_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
_OPENING = "([{"


def _translate_words(words: list[str], column: int) -> list[str]:
    """Greedy longest-match lookup; unknown words are kept as they are."""
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(_MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            entry = LEXICON.get(" ".join(words[i : i + size]).lower())
            if entry is not None:
                out.append(entry[column])
                i += size
                break
        else:
            out.append(words[i])
            i += 1
    return out


def _space_after(text: str) -> str:
    """The separator that goes after ``text`` before a new word or opening bracket."""
    return "" if not text or text[-1] in _OPENING else " "


def translate(text: str, target_language: str = "fr") -> str:
    """Translate English ``text`` with the toy phrase table.

    Punctuation is kept in place and a capitalised input gives a capitalised
    output. Raises ``gr.Error`` for a language other than fr, es or de.
    """
    if target_language not in LANGUAGES:
        raise gr.Error(
            f"Unsupported target language {target_language!r}; choose one of {LANGUAGES}."
        )
    column = LANGUAGES.index(target_language)
    result = ""
    words: list[str] = []
    for token in [*_TOKEN.findall(text), ""]:  # "" flushes the last run of words
        if token[:1].isalnum() or token[:1] == "_":
            words.append(token)
            continue
        # Punctuation ends a run of words: translate the run, then attach the mark.
        translated = " ".join(_translate_words(words, column))
        if translated:
            result += _space_after(result) + translated
        opening = token != "" and token in _OPENING
        result += (_space_after(result) if opening else "") + token
        words = []
    if text[:1].isupper():
        result = result[:1].upper() + result[1:]
    return result


def build_demo() -> gr.Blocks:
    """Build the Blocks app (does not launch it)."""
    demo = gr.Blocks(title="Toy offline translator", analytics_enabled=False)
    with demo:
        gr.Markdown(
            "# Toy offline translator\nA small phrase table, not a translation model: "
            "unknown words are left as they are."
        )
        text = gr.Textbox(label="English text", lines=3)
        language = gr.Dropdown(choices=list(LANGUAGES), value="fr", label="Target language")
        button = gr.Button("Translate", variant="primary")
        output = gr.Textbox(label="Translation")
        button.click(translate, inputs=[text, language], outputs=output, api_name="translate")
    return demo


def main() -> None:
    port = os.environ.get("GRADIO_SERVER_PORT")
    build_demo().launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(port) if port else None,
    )


if __name__ == "__main__":
    main()
