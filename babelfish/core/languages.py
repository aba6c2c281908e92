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
        "pt": "Para português, prima {digit}.",
        "pl": "Aby wybrać język polski, naciśnij {digit}.",
        "cs": "Pro češtinu stiskněte {digit}.",
        "sv": "För svenska, tryck {digit}.",
        "ru": "Для русского языка нажмите {digit}.",
        "ja": "日本語は{digit}を押してください。",
        "zh": "中文请按{digit}。",
    },
    "room_menu": {
        "en": "To join a room, enter its number and press hash. To call someone in, press star, their number, then "
              "hash. Or just press hash to be connected with the next caller.",
        "de": "Um einem Raum beizutreten, geben Sie seine Nummer ein und drücken Sie die Raute. Um jemanden "
              "anzurufen, drücken Sie Stern, seine Nummer und dann Raute. Oder drücken Sie nur die Raute, um mit "
              "dem nächsten Anrufer verbunden zu werden.",
        "fr": "Pour rejoindre une salle, tapez son numéro puis dièse. Pour appeler quelqu'un, tapez étoile, son "
              "numéro, puis dièse. Ou tapez simplement dièse pour parler au prochain appelant.",
        "es": "Para entrar en una sala, marque su número y pulse almohadilla. Para llamar a alguien, pulse "
              "asterisco, su número y almohadilla. O pulse solo almohadilla para hablar con el próximo llamante.",
        "it": "Per entrare in una stanza, digiti il suo numero e prema cancelletto. Per chiamare qualcuno, prema "
              "asterisco, il suo numero e poi cancelletto. Oppure prema solo cancelletto per parlare con il "
              "prossimo chiamante.",
        "nl": "Om een kamer binnen te gaan, toets het nummer en druk op hekje. Om iemand uit te nodigen, druk op "
              "sterretje, het nummer en dan hekje. Of druk alleen op hekje om met de volgende beller verbonden te "
              "worden.",
        "pt": "Para entrar numa sala, marque o número e prima cardinal. Para chamar alguém, prima asterisco, o "
              "número dessa pessoa e depois cardinal. Ou prima apenas cardinal para falar com a próxima pessoa que "
              "ligar.",
        "pl": "Aby dołączyć do pokoju, wpisz jego numer i naciśnij krzyżyk. Aby zaprosić kogoś do rozmowy, naciśnij "
              "gwiazdkę, jego numer, a potem krzyżyk. Albo naciśnij tylko krzyżyk, aby połączyć się z następną "
              "osobą.",
        "cs": "Chcete-li vstoupit do místnosti, zadejte její číslo a stiskněte mřížku. Chcete-li někoho přizvat, "
              "stiskněte hvězdičku, jeho číslo a pak mřížku. Nebo stiskněte jen mřížku a spojíme vás s dalším "
              "volajícím.",
        "sv": "För att gå med i ett rum, slå dess nummer och tryck fyrkant. För att ringa in någon, tryck stjärna, "
              "personens nummer och sedan fyrkant. Eller tryck bara fyrkant för att kopplas till nästa uppringare.",
        "ru": "Чтобы войти в комнату, наберите её номер и нажмите решётку. Чтобы позвать кого-то, нажмите "
              "звёздочку, его номер, а затем решётку. Или просто нажмите решётку, чтобы соединиться со следующим "
              "абонентом.",
        "ja": "ルームに参加するには、番号を入力してシャープを押してください。誰かを呼ぶには、アスタリスク、"
              "相手の番号、シャープの順に押してください。次の発信者とつながるには、シャープだけを押してください。",
        "zh": "要加入房间，请输入房间号码并按井号键。要邀请他人，请按星号键、对方号码，然后按井号键。"
              "或者只按井号键，与下一位来电者通话。",
    },
    "refused": {
        "en": "Sorry, this service is by invitation only. Goodbye.",
        "de": "Entschuldigung, dieser Dienst ist nur auf Einladung nutzbar. Auf Wiederhören.",
        "fr": "Désolé, ce service est réservé aux invités. Au revoir.",
        "es": "Lo sentimos, este servicio es solo por invitación. Adiós.",
        "it": "Spiacenti, questo servizio è solo su invito. Arrivederci.",
        "nl": "Sorry, deze dienst is alleen op uitnodiging. Tot ziens.",
        "pt": "Lamentamos, este serviço é apenas por convite. Adeus.",
        "pl": "Przepraszamy, ta usługa jest dostępna tylko na zaproszenie. Do widzenia.",
        "cs": "Omlouváme se, tato služba je pouze na pozvání. Na shledanou.",
        "sv": "Tyvärr, den här tjänsten är endast för inbjudna. Hej då.",
        "ru": "Извините, эта услуга доступна только по приглашению. До свидания.",
        "ja": "申し訳ありませんが、このサービスは招待された方のみご利用いただけます。失礼します。",
        "zh": "抱歉，本服务仅限受邀用户使用。再见。",
    },
    "room_full": {
        "en": "Sorry, that room is full. Goodbye.",
        "de": "Entschuldigung, dieser Raum ist voll. Auf Wiederhören.",
        "fr": "Désolé, cette salle est pleine. Au revoir.",
        "es": "Lo sentimos, esa sala está llena. Adiós.",
        "it": "Spiacenti, quella stanza è piena. Arrivederci.",
        "nl": "Sorry, die kamer is vol. Tot ziens.",
        "pt": "Lamentamos, essa sala está cheia. Adeus.",
        "pl": "Przepraszamy, ten pokój jest pełny. Do widzenia.",
        "cs": "Omlouváme se, tato místnost je plná. Na shledanou.",
        "sv": "Tyvärr, det rummet är fullt. Hej då.",
        "ru": "Извините, эта комната заполнена. До свидания.",
        "ja": "申し訳ありませんが、そのルームは満員です。失礼します。",
        "zh": "抱歉，该房间已满。再见。",
    },
    "inviting": {
        "en": "We are calling the other person now. Please wait.",
        "de": "Wir rufen die andere Person jetzt an. Bitte warten Sie.",
        "fr": "Nous appelons l'autre personne. Veuillez patienter.",
        "es": "Estamos llamando a la otra persona. Por favor espere.",
        "it": "Stiamo chiamando l'altra persona. Attenda, per favore.",
        "nl": "We bellen de andere persoon nu. Een ogenblik geduld.",
        "pt": "Estamos a ligar para a outra pessoa. Aguarde, por favor.",
        "pl": "Dzwonimy teraz do drugiej osoby. Proszę czekać.",
        "cs": "Právě voláme druhé osobě. Počkejte prosím.",
        "sv": "Vi ringer den andra personen nu. Var god vänta.",
        "ru": "Мы звоним другому человеку. Пожалуйста, подождите.",
        "ja": "ただいま相手の方に電話をかけています。少々お待ちください。",
        "zh": "我们正在呼叫对方，请稍候。",
    },
    "invite_failed": {
        "en": "Sorry, the other person could not be reached.",
        "de": "Entschuldigung, die andere Person ist nicht erreichbar.",
        "fr": "Désolé, l'autre personne est injoignable.",
        "es": "Lo sentimos, no se pudo contactar a la otra persona.",
        "it": "Spiacenti, non è stato possibile raggiungere l'altra persona.",
        "nl": "Sorry, de andere persoon was niet bereikbaar.",
        "pt": "Lamentamos, não foi possível contactar a outra pessoa.",
        "pl": "Przepraszamy, nie udało się połączyć z drugą osobą.",
        "cs": "Omlouváme se, druhou osobu se nepodařilo zastihnout.",
        "sv": "Tyvärr gick det inte att nå den andra personen.",
        "ru": "Извините, не удалось связаться с другим человеком.",
        "ja": "申し訳ありませんが、相手の方につながりませんでした。",
        "zh": "抱歉，无法联系到对方。",
    },
    "wait": {
        "en": "Please wait while we connect you.",
        "de": "Bitte warten Sie, während wir Sie verbinden.",
        "fr": "Veuillez patienter pendant que nous vous connectons.",
        "es": "Por favor espere mientras le conectamos.",
        "it": "Attenda mentre la colleghiamo.",
        "nl": "Een ogenblik geduld, we verbinden u.",
        "pt": "Aguarde enquanto estabelecemos a ligação.",
        "pl": "Proszę czekać, łączymy.",
        "cs": "Počkejte prosím, spojujeme vás.",
        "sv": "Var god vänta medan vi kopplar dig.",
        "ru": "Пожалуйста, подождите, мы вас соединяем.",
        "ja": "おつなぎしますので、少々お待ちください。",
        "zh": "请稍候，正在为您接通。",
    },
    "partner_left": {
        "en": "The other party has hung up. Stay on the line for a new partner, or hang up.",
        "de": "Ihr Gesprächspartner hat aufgelegt. Bleiben Sie dran für einen neuen Partner, oder legen Sie auf.",
        "fr": "Votre correspondant a raccroché. Restez en ligne pour un nouveau correspondant, ou raccrochez.",
        "es": "La otra persona ha colgado. Espere a un nuevo interlocutor o cuelgue.",
        "it": "L'altra persona ha riagganciato. Resti in linea per un nuovo interlocutore, o riagganci.",
        "nl": "De andere partij heeft opgehangen. Blijf aan de lijn voor een nieuwe partner, of hang op.",
        "pt": "A outra pessoa desligou. Mantenha-se em linha para um novo interlocutor, ou desligue.",
        "pl": "Rozmówca się rozłączył. Zostań na linii, aby porozmawiać z kimś nowym, albo się rozłącz.",
        "cs": "Druhá strana zavěsila. Zůstaňte na lince pro nového partnera, nebo zavěste.",
        "sv": "Den andra parten har lagt på. Stanna kvar i linjen för en ny samtalspartner, eller lägg på.",
        "ru": "Собеседник повесил трубку. Оставайтесь на линии, чтобы поговорить с новым собеседником, или положите "
              "трубку.",
        "ja": "相手の方が電話を切りました。新しい相手を待つにはそのままお待ちください。"
              "終了するには電話をお切りください。",
        "zh": "对方已挂断。请不要挂机，等待新的通话对象，或者挂断电话。",
    },
    # Said to a caller whose leg was switched to the language they are heard speaking (languages.detect).
    "language_switched": {
        "en": "You are speaking English: I will translate for you in English now.",
        "de": "Sie sprechen Deutsch: ich übersetze jetzt für Sie auf Deutsch.",
        "fr": "Vous parlez français : je traduis maintenant pour vous en français.",
        "es": "Usted habla español: ahora traduzco para usted en español.",
        "it": "Lei parla italiano: ora traduco per lei in italiano.",
        "nl": "U spreekt Nederlands: ik vertaal nu voor u in het Nederlands.",
        "pt": "Está a falar português: a partir de agora traduzo para si em português.",
        "pl": "Mówisz po polsku: od teraz będę tłumaczyć dla ciebie na polski.",
        "cs": "Mluvíte česky: odteď vám budu překládat do češtiny.",
        "sv": "Du talar svenska: nu översätter jag åt dig till svenska.",
        "ru": "Вы говорите по-русски: теперь я буду переводить для вас на русский.",
        "ja": "日本語をお話しですね。これからは日本語に通訳します。",
        "zh": "您说的是中文：现在我将为您翻译成中文。",
    },
    "skipped": {
        "en": "Part of the translation was skipped.",
        "de": "Ein Teil der Übersetzung wurde übersprungen.",
        "fr": "Une partie de la traduction a été sautée.",
        "es": "Se omitió parte de la traducción.",
        "it": "Parte della traduzione è stata saltata.",
        "nl": "Een deel van de vertaling is overgeslagen.",
        "pt": "Parte da tradução foi omitida.",
        "pl": "Część tłumaczenia została pominięta.",
        "cs": "Část překladu byla vynechána.",
        "sv": "En del av översättningen hoppades över.",
        "ru": "Часть перевода была пропущена.",
        "ja": "翻訳の一部が省略されました。",
        "zh": "部分翻译已被跳过。",
    },
    "busy": {
        "en": "Sorry, all our lines are busy. Please call again later.",
        "de": "Leider sind alle Leitungen belegt. Bitte rufen Sie später wieder an.",
        "fr": "Désolé, toutes nos lignes sont occupées. Veuillez rappeler plus tard.",
        "es": "Lo sentimos, todas nuestras líneas están ocupadas. Por favor, llame más tarde.",
        "it": "Siamo spiacenti, tutte le linee sono occupate. La preghiamo di richiamare più tardi.",
        "nl": "Sorry, al onze lijnen zijn bezet. Bel later nog eens.",
        "pt": "Lamentamos, todas as nossas linhas estão ocupadas. Por favor, ligue mais tarde.",
        "pl": "Przepraszamy, wszystkie linie są zajęte. Prosimy zadzwonić później.",
        "cs": "Omlouváme se, všechny linky jsou obsazené. Zavolejte prosím později.",
        "sv": "Tyvärr är alla våra linjer upptagna. Ring gärna igen senare.",
        "ru": "Извините, все линии заняты. Пожалуйста, перезвоните позже.",
        "ja": "申し訳ありませんが、ただいま回線が混み合っています。しばらくしてからおかけ直しください。",
        "zh": "抱歉，所有线路都在忙。请稍后再拨。",
    },
    "restarting": {
        "en": "The service is restarting and this call will end now. Please call again in a minute.",
        "de": "Der Dienst wird neu gestartet und dieser Anruf endet jetzt. Bitte rufen Sie in einer Minute wieder "
              "an.",
        "fr": "Le service redémarre et cet appel va se terminer. Veuillez rappeler dans une minute.",
        "es": "El servicio se está reiniciando y esta llamada terminará ahora. Llame de nuevo en un minuto.",
        "it": "Il servizio si sta riavviando e questa chiamata termina ora. Richiami tra un minuto.",
        "nl": "De dienst wordt opnieuw gestart en dit gesprek eindigt nu. Bel over een minuut opnieuw.",
        "pt": "O serviço está a reiniciar e esta chamada vai terminar agora. Ligue de novo daqui a um minuto.",
        "pl": "Usługa jest uruchamiana ponownie i ta rozmowa zaraz się zakończy. Zadzwoń ponownie za minutę.",
        "cs": "Služba se restartuje a tento hovor nyní skončí. Zavolejte prosím znovu za minutu.",
        "sv": "Tjänsten startas om och det här samtalet avslutas nu. Ring igen om en minut.",
        "ru": "Сервис перезапускается, и этот звонок сейчас завершится. Пожалуйста, перезвоните через минуту.",
        "ja": "サービスを再起動するため、この通話を終了します。1分後におかけ直しください。",
        "zh": "服务正在重启，本次通话即将结束。请一分钟后再拨。",
    },
    "time_limit": {
        "en": "This call has reached its time limit and will end now. Goodbye.",
        "de": "Dieser Anruf hat seine Höchstdauer erreicht und endet jetzt. Auf Wiederhören.",
        "fr": "Cet appel a atteint sa durée maximale et va se terminer. Au revoir.",
        "es": "Esta llamada ha alcanzado su duración máxima y terminará ahora. Adiós.",
        "it": "Questa chiamata ha raggiunto la durata massima e termina ora. Arrivederci.",
        "nl": "Dit gesprek heeft de maximale duur bereikt en eindigt nu. Tot ziens.",
        "pt": "Esta chamada atingiu o tempo máximo e vai terminar agora. Adeus.",
        "pl": "Ta rozmowa osiągnęła limit czasu i zaraz się zakończy. Do widzenia.",
        "cs": "Tento hovor dosáhl časového limitu a nyní skončí. Na shledanou.",
        "sv": "Samtalet har nått sin tidsgräns och avslutas nu. Hej då.",
        "ru": "Этот звонок достиг ограничения по времени и сейчас завершится. До свидания.",
        "ja": "この通話は時間の上限に達したため、終了します。失礼します。",
        "zh": "本次通话已达到时间上限，即将结束。再见。",
    },
    # After a server was lost: the room moved to another server and the caller is back.
    "reconnected": {
        "en": "You were reconnected. Please go on.",
        "de": "Sie wurden wieder verbunden. Bitte sprechen Sie weiter.",
        "fr": "Vous avez été reconnecté. Vous pouvez continuer.",
        "es": "Se ha restablecido la conexión. Puede continuar.",
        "it": "La chiamata è stata ricollegata. Può continuare.",
        "nl": "U bent opnieuw verbonden. Ga uw gang.",
        "pt": "A ligação foi restabelecida. Pode continuar.",
        "pl": "Połączenie zostało przywrócone. Możesz mówić dalej.",
        "cs": "Spojení bylo obnoveno. Pokračujte prosím.",
        "sv": "Du är återansluten. Varsågod och fortsätt.",
        "ru": "Соединение восстановлено. Продолжайте, пожалуйста.",
        "ja": "再接続しました。どうぞお続けください。",
        "zh": "已重新接通，请继续。",
    },
    # Played by Vonage after the socket, should the server drop: a survivor is taking the call over.
    "hold": {
        "en": "Please hold, we are reconnecting you.",
        "de": "Bitte bleiben Sie dran, wir verbinden Sie neu.",
        "fr": "Veuillez patienter, nous vous reconnectons.",
        "es": "Espere, por favor, le estamos reconectando.",
        "it": "Attenda, la stiamo ricollegando.",
        "nl": "Een moment, we verbinden u opnieuw.",
        "pt": "Aguarde, estamos a restabelecer a ligação.",
        "pl": "Proszę czekać, ponownie łączymy.",
        "cs": "Vydržte prosím, znovu vás spojujeme.",
        "sv": "Var god dröj, vi kopplar upp dig igen.",
        "ru": "Пожалуйста, подождите, мы восстанавливаем соединение.",
        "ja": "そのままお待ちください。再接続しています。",
        "zh": "请稍候，正在为您重新连接。",
    },
    # Said to everyone already in a room when another leg (phone or browser) joins it or leaves it.
    "joined": {
        "en": "Someone has joined the call.",
        "de": "Jemand ist dem Gespräch beigetreten.",
        "fr": "Quelqu'un a rejoint l'appel.",
        "es": "Alguien se ha unido a la llamada.",
        "it": "Qualcuno si è unito alla chiamata.",
        "nl": "Er is iemand aan het gesprek toegevoegd.",
        "pt": "Alguém juntou-se à chamada.",
        "pl": "Ktoś dołączył do rozmowy.",
        "cs": "Někdo se připojil k hovoru.",
        "sv": "Någon har anslutit till samtalet.",
        "ru": "К разговору кто-то присоединился.",
        "ja": "通話に参加者が加わりました。",
        "zh": "有人加入了通话。",
    },
    "left": {
        "en": "Someone has left the call.",
        "de": "Jemand hat das Gespräch verlassen.",
        "fr": "Quelqu'un a quitté l'appel.",
        "es": "Alguien ha salido de la llamada.",
        "it": "Qualcuno ha lasciato la chiamata.",
        "nl": "Er heeft iemand het gesprek verlaten.",
        "pt": "Alguém saiu da chamada.",
        "pl": "Ktoś opuścił rozmowę.",
        "cs": "Někdo opustil hovor.",
        "sv": "Någon har lämnat samtalet.",
        "ru": "Кто-то покинул разговор.",
        "ja": "参加者が通話から退出しました。",
        "zh": "有人离开了通话。",
    },
    # A keypad invitation the server will not place (not allowed, destination refused, too many this hour).
    "invite_refused": {
        "en": "Sorry, that number cannot be invited from this phone.",
        "de": "Entschuldigung, diese Nummer kann von diesem Telefon aus nicht eingeladen werden.",
        "fr": "Désolé, ce numéro ne peut pas être invité depuis ce téléphone.",
        "es": "Lo sentimos, ese número no se puede invitar desde este teléfono.",
        "it": "Spiacenti, quel numero non può essere invitato da questo telefono.",
        "nl": "Sorry, dat nummer kan vanaf deze telefoon niet worden uitgenodigd.",
        "pt": "Lamentamos, esse número não pode ser convidado a partir deste telefone.",
        "pl": "Przepraszamy, z tego telefonu nie można zaprosić tego numeru.",
        "cs": "Omlouváme se, toto číslo nelze z tohoto telefonu pozvat.",
        "sv": "Tyvärr kan det numret inte bjudas in från den här telefonen.",
        "ru": "Извините, этот номер нельзя пригласить с этого телефона.",
        "ja": "申し訳ありませんが、この電話からその番号を招待することはできません。",
        "zh": "抱歉，无法从此电话邀请该号码。",
    },
    "connected": {
        "en": "You are connected. Please speak.",
        "de": "Sie sind verbunden. Bitte sprechen Sie.",
        "fr": "Vous êtes connecté. Vous pouvez parler.",
        "es": "Está conectado. Puede hablar.",
        "it": "È collegato. Può parlare.",
        "nl": "U bent verbonden. U kunt spreken.",
        "pt": "Está ligado. Pode falar.",
        "pl": "Połączenie nawiązane. Możesz mówić.",
        "cs": "Jste spojeni. Můžete mluvit.",
        "sv": "Du är kopplad. Varsågod och tala.",
        "ru": "Вы соединены. Говорите, пожалуйста.",
        "ja": "つながりました。どうぞお話しください。",
        "zh": "已接通，请讲话。",
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
