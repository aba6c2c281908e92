"""Language tags and the few fixed sentences the server itself speaks, in each caller's language."""

from __future__ import annotations

NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "pl": "Polish",
    "cs": "Czech",
    "sv": "Swedish",
    "ru": "Russian",
    "ja": "Japanese",
    "zh": "Chinese",
}

# Default regional tag for a bare primary language, as Vonage's talk action wants "de-DE".
_REGIONS = {"en": "en-GB", "de": "de-DE", "fr": "fr-FR", "es": "es-ES", "it": "it-IT", "nl": "nl-NL",
            "pt": "pt-PT", "pl": "pl-PL", "cs": "cs-CZ", "sv": "sv-SE", "ru": "ru-RU", "ja": "ja-JP",
            "zh": "cmn-CN"}

PROMPTS: dict[str, dict[str, str]] = {
    # One option of the language menu, said in the option's own language ({digit} is the key).
    "menu_option": {
        "en": "For {name}, press {digit}.",
        "de": "Für Deutsch drücken Sie die {digit}.",
        "fr": "Pour le français, appuyez sur {digit}.",
        "es": "Para español, pulse {digit}.",
        "it": "Per l'italiano, premere {digit}.",
        "nl": "Voor Nederlands, druk op {digit}.",
    },
    "room_menu": {
        "en": "To join a room, enter its number and press hash. To call someone in, press star, their number, "
              "then hash. Or just press hash to be connected with the next caller.",
        "de": "Um einem Raum beizutreten, geben Sie seine Nummer ein und drücken Sie die Raute. Um jemanden "
              "anzurufen, drücken Sie Stern, seine Nummer und dann Raute. Oder drücken Sie nur die Raute, um mit "
              "dem nächsten Anrufer verbunden zu werden.",
        "fr": "Pour rejoindre une salle, tapez son numéro puis dièse. Pour appeler quelqu'un, tapez étoile, son "
              "numéro, puis dièse. Ou tapez simplement dièse pour parler au prochain appelant.",
        "es": "Para entrar en una sala, marque su número y pulse almohadilla. Para llamar a alguien, pulse "
              "asterisco, su número y almohadilla. O pulse solo almohadilla para hablar con el próximo llamante.",
    },
    "refused": {
        "en": "Sorry, this service is by invitation only. Goodbye.",
        "de": "Entschuldigung, dieser Dienst ist nur auf Einladung nutzbar. Auf Wiederhören.",
        "fr": "Désolé, ce service est réservé aux invités. Au revoir.",
        "es": "Lo sentimos, este servicio es solo por invitación. Adiós.",
        "it": "Spiacenti, questo servizio è solo su invito. Arrivederci.",
        "nl": "Sorry, deze dienst is alleen op uitnodiging. Tot ziens.",
    },
    "room_full": {
        "en": "Sorry, that room is full. Goodbye.",
        "de": "Entschuldigung, dieser Raum ist voll. Auf Wiederhören.",
        "fr": "Désolé, cette salle est pleine. Au revoir.",
        "es": "Lo sentimos, esa sala está llena. Adiós.",
    },
    "inviting": {
        "en": "We are calling the other person now. Please wait.",
        "de": "Wir rufen die andere Person jetzt an. Bitte warten Sie.",
        "fr": "Nous appelons l'autre personne. Veuillez patienter.",
        "es": "Estamos llamando a la otra persona. Por favor espere.",
    },
    "invite_failed": {
        "en": "Sorry, the other person could not be reached.",
        "de": "Entschuldigung, die andere Person ist nicht erreichbar.",
        "fr": "Désolé, l'autre personne est injoignable.",
        "es": "Lo sentimos, no se pudo contactar a la otra persona.",
    },
    "wait": {
        "en": "Please wait while we connect you.",
        "de": "Bitte warten Sie, während wir Sie verbinden.",
        "fr": "Veuillez patienter pendant que nous vous connectons.",
        "es": "Por favor espere mientras le conectamos.",
        "it": "Attenda mentre la colleghiamo.",
        "nl": "Een ogenblik geduld, we verbinden u.",
    },
    "partner_left": {
        "en": "The other party has hung up. Stay on the line for a new partner, or hang up.",
        "de": "Ihr Gesprächspartner hat aufgelegt. Bleiben Sie dran für einen neuen Partner, oder legen Sie auf.",
        "fr": "Votre correspondant a raccroché. Restez en ligne pour un nouveau correspondant, ou raccrochez.",
        "es": "La otra persona ha colgado. Espere a un nuevo interlocutor o cuelgue.",
        "it": "L'altra persona ha riagganciato. Resti in linea per un nuovo interlocutore, o riagganci.",
        "nl": "De andere partij heeft opgehangen. Blijf aan de lijn voor een nieuwe partner, of hang op.",
    },
    # Said to a caller whose leg was switched to the language they are heard speaking (languages.detect).
    "language_switched": {
        "en": "You are speaking English: I will translate for you in English now.",
        "de": "Sie sprechen Deutsch: ich übersetze jetzt für Sie auf Deutsch.",
        "fr": "Vous parlez français : je traduis maintenant pour vous en français.",
        "es": "Usted habla español: ahora traduzco para usted en español.",
        "it": "Lei parla italiano: ora traduco per lei in italiano.",
        "nl": "U spreekt Nederlands: ik vertaal nu voor u in het Nederlands.",
    },
    "skipped": {
        "en": "Part of the translation was skipped.",
        "de": "Ein Teil der Übersetzung wurde übersprungen.",
        "fr": "Une partie de la traduction a été sautée.",
        "es": "Se omitió parte de la traducción.",
        "it": "Parte della traduzione è stata saltata.",
        "nl": "Een deel van de vertaling is overgeslagen.",
    },
    "busy": {
        "en": "Sorry, all our lines are busy. Please call again later.",
        "de": "Leider sind alle Leitungen belegt. Bitte rufen Sie später wieder an.",
        "fr": "Désolé, toutes nos lignes sont occupées. Veuillez rappeler plus tard.",
        "es": "Lo sentimos, todas nuestras líneas están ocupadas. Por favor, llame más tarde.",
        "it": "Siamo spiacenti, tutte le linee sono occupate. La preghiamo di richiamare più tardi.",
        "nl": "Sorry, al onze lijnen zijn bezet. Bel later nog eens.",
    },
    "restarting": {
        "en": "The service is restarting and this call will end now. Please call again in a minute.",
        "de": "Der Dienst wird neu gestartet und dieser Anruf endet jetzt. Bitte rufen Sie in einer Minute "
              "wieder an.",
        "fr": "Le service redémarre et cet appel va se terminer. Veuillez rappeler dans une minute.",
        "es": "El servicio se está reiniciando y esta llamada terminará ahora. Llame de nuevo en un minuto.",
        "it": "Il servizio si sta riavviando e questa chiamata termina ora. Richiami tra un minuto.",
        "nl": "De dienst wordt opnieuw gestart en dit gesprek eindigt nu. Bel over een minuut opnieuw.",
    },
    "time_limit": {
        "en": "This call has reached its time limit and will end now. Goodbye.",
        "de": "Dieser Anruf hat seine Höchstdauer erreicht und endet jetzt. Auf Wiederhören.",
        "fr": "Cet appel a atteint sa durée maximale et va se terminer. Au revoir.",
        "es": "Esta llamada ha alcanzado su duración máxima y terminará ahora. Adiós.",
        "it": "Questa chiamata ha raggiunto la durata massima e termina ora. Arrivederci.",
        "nl": "Dit gesprek heeft de maximale duur bereikt en eindigt nu. Tot ziens.",
    },
    # After a server was lost: the room moved to another server and the caller is back.
    "reconnected": {
        "en": "You were reconnected. Please go on.",
        "de": "Sie wurden wieder verbunden. Bitte sprechen Sie weiter.",
        "fr": "Vous avez été reconnecté. Vous pouvez continuer.",
        "es": "Se ha restablecido la conexión. Puede continuar.",
        "it": "La chiamata è stata ricollegata. Può continuare.",
        "nl": "U bent opnieuw verbonden. Ga uw gang.",
    },
    # Played by Vonage after the socket, should the server drop: a survivor is taking the call over.
    "hold": {
        "en": "Please hold, we are reconnecting you.",
        "de": "Bitte bleiben Sie dran, wir verbinden Sie neu.",
        "fr": "Veuillez patienter, nous vous reconnectons.",
        "es": "Espere, por favor, le estamos reconectando.",
        "it": "Attenda, la stiamo ricollegando.",
        "nl": "Een moment, we verbinden u opnieuw.",
    },
    # Said to everyone already in a room when another leg (phone or browser) joins it or leaves it.
    "joined": {
        "en": "Someone has joined the call.",
        "de": "Jemand ist dem Gespräch beigetreten.",
        "fr": "Quelqu'un a rejoint l'appel.",
        "es": "Alguien se ha unido a la llamada.",
        "it": "Qualcuno si è unito alla chiamata.",
        "nl": "Er is iemand aan het gesprek toegevoegd.",
    },
    "left": {
        "en": "Someone has left the call.",
        "de": "Jemand hat das Gespräch verlassen.",
        "fr": "Quelqu'un a quitté l'appel.",
        "es": "Alguien ha salido de la llamada.",
        "it": "Qualcuno ha lasciato la chiamata.",
        "nl": "Er heeft iemand het gesprek verlaten.",
    },
    # A keypad invitation the server will not place (not allowed, destination refused, too many this hour).
    "invite_refused": {
        "en": "Sorry, that number cannot be invited from this phone.",
        "de": "Entschuldigung, diese Nummer kann von diesem Telefon aus nicht eingeladen werden.",
        "fr": "Désolé, ce numéro ne peut pas être invité depuis ce téléphone.",
        "es": "Lo sentimos, ese número no se puede invitar desde este teléfono.",
        "it": "Spiacenti, quel numero non può essere invitato da questo telefono.",
        "nl": "Sorry, dat nummer kan vanaf deze telefoon niet worden uitgenodigd.",
    },
    "connected": {
        "en": "You are connected. Please speak.",
        "de": "Sie sind verbunden. Bitte sprechen Sie.",
        "fr": "Vous êtes connecté. Vous pouvez parler.",
        "es": "Está conectado. Puede hablar.",
        "it": "È collegato. Può parlare.",
        "nl": "U bent verbonden. U kunt spreken.",
    },
}


def primary(tag: str) -> str:
    """``"de-DE"`` -> ``"de"``."""
    return tag.replace("_", "-").split("-")[0].lower()


def same_language(a: str, b: str) -> bool:
    """``"de-DE"`` and ``"de-AT"`` are the same language."""
    return primary(a) == primary(b)


def regional(tag: str) -> str:
    """A tag Vonage's talk action accepts: ``"de"`` -> ``"de-DE"``; a regional tag is kept."""
    tag = tag.replace("_", "-")
    return tag if "-" in tag else _REGIONS.get(tag.lower(), tag)


def name(tag: str) -> str:
    return NAMES.get(primary(tag), tag)


def prompt(key: str, tag: str) -> tuple[str, str]:
    """The fixed sentence ``key`` in language ``tag`` (English when we have no translation), and its tag."""
    texts = PROMPTS[key]
    lang = primary(tag)
    if lang in texts:
        return texts[lang], regional(tag)
    return texts["en"], "en-GB"
