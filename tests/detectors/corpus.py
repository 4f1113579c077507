"""The labelled PII corpus for the guard's detectors: generated, deterministic (seeded), several locales.

``pii_samples`` writes realistic support-chat answers in seven languages with
personal data of the locale embedded (names, e-mails, phone numbers valid in
the locale's numbering plan, cards, IBANs, national identifiers with valid
check digits, IP addresses, secrets) and labels every embedded value with its
kind and offsets. The answers also carry the noise real answers carry: order
and tracking numbers, dates, times, prices, versions.

``clean_samples`` writes answers without any personal data but full of
numbers (the false-positive rate is measured on them); ``HARD_NEGATIVES`` are
hand-written answers whose every number looks like something it is not.

Values come from Faker (names, e-mails, cards, IBANs, most national ids) and,
where Faker's output is not valid for the check digit or numbering plan, from
libphonenumber's and stdnum's own rules (phone numbers are Faker's when valid,
else libphonenumber's example numbers with random subscriber digits).
Regenerated at test time (~0.3 s); same seed, same corpus for a given Faker.
"""

from __future__ import annotations

import base64
import functools
import json
import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import phonenumbers
from faker import Faker
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from stdnum import iban as std_iban
from stdnum import verhoeff
from stdnum.de import idnr
from stdnum.iso7064 import mod_11_10

SEED = 12


@dataclass(frozen=True)
class Label:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Sample:
    text: str
    labels: tuple[Label, ...] = ()
    locale: str = ""
    category: str = "pii"  # pii | clean | hard-negative


@dataclass(frozen=True)
class Locale:
    code: str
    language: str
    region: str
    id_name: str  # how an answer in this locale names its national identifier
    id_kind: str = "national-id"


LOCALES: tuple[Locale, ...] = (
    Locale("en_US", "en", "US", "Social Security number", "ssn"),
    Locale("en_GB", "en", "GB", "National Insurance number"),
    Locale("en_CA", "en", "CA", "SIN"),
    Locale("en_IN", "en", "IN", "Aadhaar number"),
    Locale("de_DE", "de", "DE", "Steuer-ID"),
    Locale("fr_FR", "fr", "FR", "numéro de sécurité sociale (NIR)"),
    Locale("es_ES", "es", "ES", "DNI"),
    Locale("it_IT", "it", "IT", "codice fiscale"),
    Locale("nl_NL", "nl", "NL", "BSN"),
    Locale("pt_BR", "pt", "BR", "CPF"),
    Locale("pl_PL", "en", "PL", "PESEL"),
    Locale("sv_SE", "en", "SE", "personnummer"),
)

# Answer templates per language. PII slots: {email} {phone} {card} {iban} {id} {ip} {ip6} {secret};
# noise: {name} {first} {city} {street} {date} {time} {order} {price} {tracking} {version} {product} {days}.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "Hi {first}, thanks for waiting. I found order #{order} placed on {date}. The confirmation went to {email} "
        "and we will text the courier updates to {phone}. It should arrive within {days} business days.",
        "Of course! I've updated your account: billing e-mail {email}, phone number {phone}. The new card ending "
        "was saved as {card}. Your next invoice ({price}) is due on {date}.",
        "I can see the refund of {price} for order {order}. It will be paid to the IBAN {iban} within {days} days. "
        "If the account holder is not {name}, please let us know.",
        "For the tax form we have your {id_name} as {id}. If that is not correct, reply before {date} and we will "
        "fix it. Your customer contact is still {email}.",
        "The login on {date} at {time} came from IP address {ip}, which we blocked. If that was you, call us from "
        "{phone} and we will unlock the account.",
        "Here is the record you asked about: {name}, {street}, {city}; e-mail {email}; mobile {phone}. Version "
        "{version} of the app shows the same data under Profile.",
        "Your API key for the sandbox is {secret}. Please keep it private; version {version} of the SDK reads it "
        "from the environment.",
        "We received a payment of {price} from the card {card} on {date}. The receipt was sent to {email}.",
        "The device registered from {ip6} on {date}. Tracking number {tracking} is already with the courier.",
        "Thanks {first}! Your {id_name} {id} and your phone {phone} are now verified. Order #{order} is on its way.",
        "Please call {name} back on {phone} about the parcel {tracking}; the driver came at {time} on {date}.",
        "I've linked the bank account {iban} to your profile. Direct debits of {price} start on {date}.",
        "Contact details on file: {name} | {phone} | {email} | {street}, {city}. Last order {order} on {date}.",
        "Sure, the customer {name} ({email}) paid {price} on {date} with {card}; order {order} ships in {days} days.",
        "Transfer {price} to {iban} (account holder {name}) by {date} and quote {order} as the reference.",
        "The session token {secret} was revoked at {time}; sign in again with {email} to get a new one.",
    ),
    "de": (
        "Hallo {first}, vielen Dank für Ihre Geduld. Ihre Bestellung {order} vom {date} ist unterwegs. Die "
        "Bestätigung ging an {email}, Rückfragen gern telefonisch unter {phone}.",
        "Ich habe Ihr Konto aktualisiert: E-Mail {email}, Telefon {phone}. Die Erstattung über {price} geht auf "
        "die IBAN {iban} und ist in {days} Werktagen da.",
        "Für die Rechnung benötigen wir Ihre Steuer-ID; hinterlegt ist {id}. Bitte prüfen Sie das bis zum {date}.",
        "Die Anmeldung am {date} um {time} kam von der IP-Adresse {ip}. Waren Sie das nicht, rufen Sie uns "
        "bitte von {phone} aus an.",
        "Hier die Daten: {name}, {street}, {city}, Handy {phone}, E-Mail {email}. Die App-Version {version} zeigt "
        "dieselben Angaben.",
        "Die Zahlung über {price} mit der Karte {card} ist am {date} eingegangen. Die Quittung ging an {email}.",
        "Kontakt: {name}, {phone}, {email}; letzte Bestellung {order} vom {date}.",
    ),
    "fr": (
        "Bonjour {first}, merci de votre patience. Votre commande {order} du {date} est en route. La confirmation "
        "a été envoyée à {email} et le livreur vous appellera au {phone}.",
        "J'ai mis à jour votre compte : e-mail {email}, téléphone {phone}. Le remboursement de {price} sera versé "
        "sur l'IBAN {iban} sous {days} jours ouvrés.",
        "Pour votre dossier, nous avons enregistré votre {id_name} : {id}. Merci de le vérifier avant le {date}.",
        "La connexion du {date} à {time} provenait de l'adresse IP {ip}. Si ce n'était pas vous, appelez-nous "
        "depuis le {phone}.",
        "Voici la fiche : {name}, {street}, {city}, portable {phone}, e-mail {email}. La version {version} de "
        "l'application affiche les mêmes données.",
        "Le paiement de {price} par la carte {card} a bien été reçu le {date}. Le reçu a été envoyé à {email}.",
        "Coordonnées : {name} – {phone} – {email}. Dernière commande {order} le {date}.",
    ),
    "es": (
        "Hola {first}, gracias por esperar. Tu pedido {order} del {date} ya está en camino. La confirmación se "
        "envió a {email} y el repartidor te llamará al teléfono {phone}.",
        "He actualizado tu cuenta: correo {email}, móvil {phone}. El reembolso de {price} se abonará en el IBAN "
        "{iban} en {days} días hábiles.",
        "Para la factura tenemos registrado tu {id_name} {id}. Por favor, revísalo antes del {date}.",
        "El acceso del {date} a las {time} vino de la dirección IP {ip}. Si no fuiste tú, llámanos desde el "
        "número {phone}.",
        "Estos son los datos: {name}, {street}, {city}, teléfono {phone}, correo {email}. La versión {version} "
        "de la app muestra lo mismo.",
        "Hemos recibido el pago de {price} con la tarjeta {card} el {date}. El recibo se envió a {email}.",
        "Datos de contacto: {name} / {phone} / {email}. Último pedido {order} del {date}.",
    ),
    "it": (
        "Ciao {first}, grazie per l'attesa. Il tuo ordine {order} del {date} è in viaggio. La conferma è stata "
        "inviata a {email} e il corriere ti chiamerà al numero {phone}.",
        "Ho aggiornato il tuo account: e-mail {email}, cellulare {phone}. Il rimborso di {price} arriverà "
        "sull'IBAN {iban} entro {days} giorni lavorativi.",
        "Per la fattura abbiamo registrato il tuo {id_name} {id}. Ti chiediamo di verificarlo entro il {date}.",
        "L'accesso del {date} alle {time} proveniva dall'indirizzo IP {ip}. Se non eri tu, chiamaci dal "
        "telefono {phone}.",
        "Ecco i dati: {name}, {street}, {city}, telefono {phone}, e-mail {email}. La versione {version} "
        "dell'app mostra gli stessi dati.",
        "Abbiamo ricevuto il pagamento di {price} con la carta {card} il {date}. La ricevuta è stata inviata a {email}.",
    ),
    "nl": (
        "Hoi {first}, bedankt voor je geduld. Je bestelling {order} van {date} is onderweg. De bevestiging ging "
        "naar {email} en de bezorger belt je op {phone}.",
        "Ik heb je account bijgewerkt: e-mail {email}, telefoon {phone}. De terugbetaling van {price} komt binnen "
        "{days} werkdagen op IBAN {iban}.",
        "Voor de factuur hebben we je {id_name} {id} geregistreerd. Controleer dit alsjeblieft voor {date}.",
        "De login op {date} om {time} kwam van IP-adres {ip}. Was jij dat niet, bel ons dan vanaf {phone}.",
        "Dit zijn de gegevens: {name}, {street}, {city}, mobiel {phone}, e-mail {email}. Versie {version} van de "
        "app toont hetzelfde.",
        "We hebben de betaling van {price} met kaart {card} op {date} ontvangen. Het bewijs ging naar {email}.",
    ),
    "pt": (
        "Olá {first}, obrigado pela paciência. Seu pedido {order} de {date} já está a caminho. A confirmação foi "
        "enviada para {email} e o entregador vai ligar para o telefone {phone}.",
        "Atualizei sua conta: e-mail {email}, celular {phone}. O reembolso de {price} será pago no IBAN {iban} "
        "em {days} dias úteis.",
        "Para a nota fiscal temos registrado o seu {id_name} {id}. Por favor, confira até {date}.",
        "O acesso de {date} às {time} veio do endereço IP {ip}. Se não foi você, ligue para nós do número {phone}.",
        "Estes são os dados: {name}, {street}, {city}, telefone {phone}, e-mail {email}. A versão {version} do "
        "aplicativo mostra o mesmo.",
        "Recebemos o pagamento de {price} com o cartão {card} em {date}. O recibo foi enviado para {email}.",
    ),
}

_SLOT_KINDS = {"email": "email", "phone": "phone", "card": "card", "iban": "iban", "ip": "ipv4", "ip6": "ipv6"}
_PERSONAL = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_PERSONAL_TYPES = {*_PERSONAL, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.VOIP}


# --- values ---------------------------------------------------------------------------------------


def _valid_personal(number: phonenumbers.PhoneNumber) -> bool:
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in _PERSONAL_TYPES


def phone(faker: Faker, region: str, rnd: random.Random) -> str:
    """A valid personal phone number of the region, in one of the ways people write them."""
    if rnd.random() < 0.3:
        for _ in range(5):
            written = faker.phone_number()
            try:
                number = phonenumbers.parse(written, region)
            except phonenumbers.NumberParseException:
                continue
            if _valid_personal(number) and "x" not in written and "ext" not in written.lower():
                return written
    for _ in range(200):
        example = phonenumbers.example_number_for_type(region, rnd.choice(_PERSONAL))
        if example is None:
            continue
        nsn = phonenumbers.national_significant_number(example)
        keep = max(2, len(nsn) - rnd.randint(4, 6))
        candidate = nsn[:keep] + "".join(rnd.choice(string.digits) for _ in range(len(nsn) - keep))
        try:
            number = phonenumbers.parse("+" + str(example.country_code) + candidate, None)
        except phonenumbers.NumberParseException:
            continue
        if _valid_personal(number):
            return _write_phone(number, region, rnd)
    raise RuntimeError(f"no valid phone number for {region}")


def _write_phone(number: phonenumbers.PhoneNumber, region: str, rnd: random.Random) -> str:
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    choices = [national, national, international, international, e164, "00" + e164[1:]]
    if region == "FR":
        choices.append(national.replace(" ", "."))
    if region in ("US", "CA"):
        digits = phonenumbers.national_significant_number(number)
        choices += [f"{digits[:3]}-{digits[3:6]}-{digits[6:]}", f"{digits[:3]}.{digits[3:6]}.{digits[6:]}"]
        choices.append(international.replace(" ", "-"))
    if national.startswith("0"):
        choices.append(national.replace(" ", ""))
    return rnd.choice(choices)


def _cased(email: str, rnd: random.Random) -> str:
    """People write e-mail addresses in any case."""
    roll = rnd.random()
    return email.upper() if roll < 0.05 else email.title() if roll < 0.1 else email


def card(faker: Faker, rnd: random.Random) -> str:
    kind = rnd.choice(["visa", "visa", "mastercard", "mastercard", "amex", "discover", "jcb", "diners"])
    digits = faker.credit_card_number(kind)
    while kind == "jcb" and not 3528 <= int(digits[:4]) <= 3589:  # Faker's JCB numbers use unassigned 3500-3527
        digits = faker.credit_card_number(kind)
    style = rnd.choice(["space", "space", "dash", "none"])
    if style == "none":
        return digits
    groups = (4, 6, 5) if len(digits) == 15 else (4, 6, 4) if len(digits) == 14 else (4,) * (len(digits) // 4)
    out: list[str] = []
    pos = 0
    for size in groups:
        out.append(digits[pos : pos + size])
        pos += size
    if pos < len(digits):
        out.append(digits[pos:])
    return (" " if style == "space" else "-").join(out)


def iban(faker: Faker, rnd: random.Random) -> str:
    for _ in range(50):
        value = faker.iban()
        if std_iban.is_valid(value):
            return std_iban.format(value) if rnd.random() < 0.6 else value
    raise RuntimeError("no valid IBAN")


def _idnr(rnd: random.Random) -> str:
    while True:
        base = str(rnd.randint(1, 9)) + "".join(rnd.choice(string.digits) for _ in range(9))
        number = base + mod_11_10.calc_check_digit(base)
        if idnr.is_valid(number):
            return number


def _aadhaar(rnd: random.Random) -> str:
    base = str(rnd.randint(2, 9)) + "".join(rnd.choice(string.digits) for _ in range(10))
    number = base + verhoeff.calc_check_digit(base)
    return " ".join(number[i : i + 4] for i in range(0, 12, 4))


def _nino(rnd: random.Random) -> str:
    first = rnd.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = rnd.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        first = "A"
    digits = "".join(rnd.choice(string.digits) for _ in range(6))
    suffix = rnd.choice("ABCD")
    if rnd.random() < 0.5:
        return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    return f"{first}{second}{digits}{suffix}"


def national_id(faker: Faker, locale: Locale, rnd: random.Random) -> str:
    code = locale.code
    if code == "en_US":
        return str(faker.ssn())
    if code == "en_GB":
        return _nino(rnd)
    if code == "en_CA":
        return str(faker.ssn())
    if code == "en_IN":
        return _aadhaar(rnd)
    if code == "de_DE":
        number = _idnr(rnd)
        return f"{number[:2]} {number[2:5]} {number[5:8]} {number[8:]}" if rnd.random() < 0.5 else number
    if code == "fr_FR":
        n = str(faker.ssn())
        return f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}" if rnd.random() < 0.5 else n
    if code == "es_ES":
        return str(faker.nie() if rnd.random() < 0.3 else faker.nif())
    if code == "it_IT":
        return str(faker.ssn())
    if code == "nl_NL":
        return str(faker.ssn())
    if code == "pt_BR":
        return str(faker.cpf())
    if code == "pl_PL":
        return str(faker.pesel())
    if code == "sv_SE":
        return str(faker.ssn())
    raise ValueError(code)


def ipv6(rnd: random.Random) -> str:
    groups = [f"{rnd.choice([0x2A00, 0x2A01, 0x2A02, 0x2600, 0x2804, 0x2406]) + rnd.randint(0, 15):x}"]
    groups += [f"{rnd.randint(0, 0xFFFF):x}" for _ in range(7)]
    if rnd.random() < 0.5:
        groups[3:6] = ["", ""] if rnd.random() < 0.5 else ["0", "0", "0"]
        return ":".join(groups).replace(":::", "::")
    return ":".join(groups)


def _b64(rnd: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rnd.choice(alphabet) for _ in range(n))


def secret(rnd: random.Random) -> str:
    kind = rnd.randrange(9)
    if kind == 0:
        return "AKIA" + _b64(rnd, 16, string.ascii_uppercase + "234567")
    if kind == 1:
        return "ghp_" + _b64(rnd, 36)
    if kind == 2:
        return f"xoxb-{rnd.randint(10**9, 10**10)}-{rnd.randint(10**9, 10**10)}-{_b64(rnd, 24)}"
    if kind == 3:
        return "sk_live_" + _b64(rnd, 24)
    if kind == 4:
        return "sk-proj-" + _b64(rnd, 8) + "7Q" + _b64(rnd, 30)
    if kind == 5:
        return "AIza" + _b64(rnd, 35, string.ascii_letters + string.digits + "_-")
    if kind == 6:

        def part(obj: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

        return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': rnd.randint(1, 10**6)})}.{_b64(rnd, 43)}"
    if kind == 7:
        body = "\n".join(_b64(rnd, 64, string.ascii_letters + string.digits + "+/") for _ in range(6))
        return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    return (
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey="
        + _b64(rnd, 86)
        + "==;EndpointSuffix=core.windows.net"
    )


# --- noise ----------------------------------------------------------------------------------------


def _order(rnd: random.Random) -> str:
    return rnd.choice(
        [
            str(rnd.randint(10**6, 10**10)),
            f"{rnd.randint(100, 999)}-{rnd.randint(10**6, 10**7 - 1)}-{rnd.randint(10**6, 10**7 - 1)}",
            f"A{rnd.randint(10**5, 10**6 - 1)}",
            f"SO-{rnd.randint(2019, 2026)}-{rnd.randint(1000, 99999)}",
        ]
    )


def _tracking(rnd: random.Random) -> str:
    return rnd.choice(
        [
            "1Z" + _b64(rnd, 6, string.ascii_uppercase + string.digits) + "".join(rnd.choices(string.digits, k=10)),
            " ".join("".join(rnd.choices(string.digits, k=4)) for _ in range(5)) + " " + str(rnd.randint(10, 99)),
            "".join(rnd.choices(string.ascii_uppercase, k=2)) + "".join(rnd.choices(string.digits, k=9)) + "GB",
            "JD" + "".join(rnd.choices(string.digits, k=18)),
        ]
    )


def _noise(faker: Faker, rnd: random.Random) -> dict[str, str]:
    return {
        "name": faker.name(),
        "first": faker.first_name(),
        "city": faker.city(),
        "street": faker.street_address().replace("\n", ", "),
        "date": faker.date_between(start_date="-2y", end_date="+30d").strftime(
            rnd.choice(["%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"])
        ),
        "time": f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}",
        "order": _order(rnd),
        "price": rnd.choice(["€", "$", "£"]) + f"{rnd.randint(1, 2999)}.{rnd.randint(0, 99):02d}",
        "tracking": _tracking(rnd),
        "version": f"{rnd.randint(1, 12)}.{rnd.randint(0, 30)}.{rnd.randint(0, 99)}",
        "product": faker.word(),
        "days": str(rnd.randint(2, 10)),
    }


# --- samples --------------------------------------------------------------------------------------


def _fill(template: str, values: dict[str, str], kinds: dict[str, str]) -> Sample:
    """Fill a template, labelling each PII slot's value at its offset."""
    out: list[str] = []
    labels: list[Label] = []
    pos = 0
    length = 0
    for literal, slot, _, _ in string.Formatter().parse(template):
        out.append(literal)
        length += len(literal)
        if slot is None:
            continue
        value = values[slot]
        if slot in kinds:
            labels.append(Label(kinds[slot], length, length + len(value)))
        out.append(value)
        length += len(value)
        pos += 1
    return Sample("".join(out), tuple(labels))


def pii_samples(n: int = 1200, seed: int = SEED) -> list[Sample]:
    """``n`` labelled answers with personal data, spread over the locales."""
    rnd = random.Random(seed)
    fakers = {loc.code: Faker(loc.code) for loc in LOCALES}
    for i, faker in enumerate(fakers.values()):
        faker.seed_instance(seed + i)
    samples: list[Sample] = []
    for i in range(n):
        locale = LOCALES[i % len(LOCALES)]
        faker = fakers[locale.code]
        template = rnd.choice(TEMPLATES[locale.language])
        values = _noise(faker, rnd)
        kinds: dict[str, str] = {}
        generators: dict[str, Callable[[], str]] = {
            "email": lambda faker=faker: _cased(
                rnd.choice([faker.free_email, faker.email, faker.company_email])(), rnd
            ),
            "phone": lambda faker=faker, locale=locale: phone(faker, locale.region, rnd),
            "card": lambda faker=faker: card(faker, rnd),
            # Faker's en_IN IBANs are malformed (India has no IBAN): a British one there.
            "iban": lambda faker=faker, locale=locale: iban(fakers["en_GB"] if locale.code == "en_IN" else faker, rnd),
            "id": lambda faker=faker, locale=locale: national_id(faker, locale, rnd),
            "ip": lambda faker=faker: faker.ipv4_public(),
            "ip6": lambda: ipv6(rnd),
            "secret": lambda: secret(rnd),
        }
        for slot, make in generators.items():
            if "{" + slot + "}" in template:
                values[slot] = make()
                kinds[slot] = locale.id_kind if slot == "id" else "secret" if slot == "secret" else _SLOT_KINDS[slot]
        values["id_name"] = locale.id_name
        sample = _fill(template, values, kinds)
        samples.append(Sample(sample.text, sample.labels, locale.code, "pii"))
    return samples


CLEAN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "Hi {first}, your order #{order} shipped on {date} and should arrive within {days} business days. The "
        "tracking number is {tracking}. The total of {price} was charged on {date}.",
        "Thanks for reporting this! Version {version} fixes the sync issue; please update from the app store. "
        "Our team is available Monday to Friday, 9:00-17:00.",
        "Your invoice INV-{order} for {price} is attached. If anything is unclear, write to support@acme.com or "
        "call our free hotline 0800 123 4567.",
        "The parcel {tracking} left our warehouse in {city} at {time}. Returns are free within 30 days; just "
        "print the label from your account.",
        "Build {version} (commit {sha}) passed all checks. The release notes for {version} are on our status "
        "page; the incident from {date} {time} is resolved.",
        "You can reset the router from its admin page at 192.168.1.1; the default password is printed on the "
        "label under the device. Firmware {version} is recommended.",
        "Your subscription renews on {date} for {price}. Product code {sku}, serial number SN-{order}.",
        "Your case ID is {ref} and your customer number {ref2}; please quote both when you call 0800 123 4567.",
        "Order {order} contains {days} items: {days} x {price}. Estimated delivery {date} between {time} and 18:00.",
        "The reference {ref} appears on the bank statement; the amount of {price} was booked on {date}.",
        "Your loyalty card {ref2} now has {days}00 points. The promotion runs until {date} ({days} days left).",
    ),
    "de": (
        "Hallo {first}, Ihre Bestellung {order} wurde am {date} versandt, Sendungsnummer {tracking}. Die Summe "
        "von {price} wurde am {date} abgebucht.",
        "Version {version} behebt den Fehler. Unser Team ist Montag bis Freitag von 9:00-17:00 Uhr erreichbar.",
        "Ihre Rechnung Nr. {order} über {price} liegt bei. Fragen gern an kundenservice@example.de.",
    ),
    "fr": (
        "Bonjour {first}, votre commande {order} a été expédiée le {date}, numéro de suivi {tracking}. Le "
        "montant de {price} a été débité.",
        "La version {version} corrige le problème. Notre équipe répond du lundi au vendredi, de 9:00-17:00.",
        "Votre facture n° {order} de {price} est jointe. Pour toute question : service-client@example.fr.",
    ),
    "es": (
        "Hola {first}, tu pedido {order} salió el {date}, número de seguimiento {tracking}. El importe de "
        "{price} se cargó el {date}.",
        "La versión {version} corrige el error. Atendemos de lunes a viernes de 9:00-17:00.",
    ),
    "it": (
        "Ciao {first}, il tuo ordine {order} è partito il {date}, codice di spedizione {tracking}. L'importo di "
        "{price} è stato addebitato.",
        "La versione {version} risolve il problema. Siamo disponibili dal lunedì al venerdì, 9:00-17:00.",
    ),
    "nl": (
        "Hoi {first}, je bestelling {order} is op {date} verzonden, trackingcode {tracking}. Het bedrag van "
        "{price} is afgeschreven.",
        "Versie {version} lost het probleem op. We zijn bereikbaar van maandag tot vrijdag, 9:00-17:00.",
    ),
    "pt": (
        "Olá {first}, seu pedido {order} foi enviado em {date}, código de rastreio {tracking}. O valor de "
        "{price} foi cobrado.",
        "A versão {version} corrige o problema. Atendemos de segunda a sexta, das 9:00-17:00.",
    ),
}


def clean_samples(n: int = 400, seed: int = SEED + 1) -> list[Sample]:
    """``n`` support-chat answers without personal data, full of numbers that are not."""
    rnd = random.Random(seed)
    fakers = {loc.code: Faker(loc.code) for loc in LOCALES}
    for i, faker in enumerate(fakers.values()):
        faker.seed_instance(seed + i)
    samples: list[Sample] = []
    for i in range(n):
        locale = LOCALES[i % len(LOCALES)]
        values = _noise(fakers[locale.code], rnd)
        values["sha"] = "".join(rnd.choices("0123456789abcdef", k=7))
        values["sku"] = f"{rnd.choice(['XR', 'KB', 'MX'])}-{rnd.randint(100, 9999)}"
        values["ref"] = "".join(rnd.choices(string.digits, k=rnd.randint(8, 12)))
        values["ref2"] = " ".join("".join(rnd.choices(string.digits, k=4)) for _ in range(rnd.randint(2, 4)))
        text = rnd.choice(CLEAN_TEMPLATES[locale.language]).format(**values)
        samples.append(Sample(text, (), locale.code, "clean"))
    return samples


# Hand-written: every number here looks like personal data and is not.
HARD_NEGATIVES: tuple[str, ...] = (
    "Your order #4829173650 ships on 2024-03-15 at 14:30 for $129.99.",
    "Order number 112-4829173-6501234 was split into two parcels.",
    "Tracking number: 1Z999AA10123456784 (UPS), delivery expected by Friday.",
    "USPS tracking 9400 1000 0000 0000 0000 00 shows the parcel in transit.",
    "Royal Mail tracking RN123456789GB was scanned at 06:12.",
    "DHL shipment 1234567890 left the hub in Leipzig.",
    "Invoice INV-2024-000421 for €349.00 is attached to this message.",
    "Rechnungsnummer 2024-11873, Kundennummer 448213, Betrag 89,90 €.",
    "Facture n° 2024-0815 du 12/03/2024, montant 129,00 €.",
    "Pedido 4829173650, factura F-2024-118, importe 59,95 €.",
    "The timestamp 2024-03-15T14:30:00Z is in UTC; locally it was 15:30.",
    "Logs from 15.03.2024 09:41:27 show the retry at 09:41:31.",
    "Epoch 1710513000 corresponds to 15 March 2024.",
    "Between 2019-2024 prices rose by 12 %.",
    "Please upgrade from version 2.3.1 to 2.10.0; 3.0.0-beta.2 is not stable yet.",
    "Python 3.11.7, Node 20.11.1 and OpenSSL 3.0.13 are supported.",
    "The app version 10.15.7.1234 is the last one for iOS 15.",
    "Firmware 1.2.3.4 fixes the Wi-Fi drops; build 20240315.1 is the nightly.",
    "The total is $1,299.99 (tax $104.00), or 3 payments of $433.33.",
    "Prices: 19,99 €, 129 € and 1.299,00 € for the premium plan.",
    "Product code 4006381333931 (EAN) and SKU KB-2201-BLK are the same keyboard.",
    "Model XR-5500, part number 004-1234-5678, serial SN-88213-77.",
    "Replacement part 555-0199-A fits all models since 2021.",
    "IMEI 490154203237518 is registered to the device, not to a person.",
    "SHA-256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 matches the download.",
    "The commit 9fceb02d0ae598e95dc970b74767f19372d61af8 introduced the fix.",
    "MD5 d41d8cd98f00b204e9800998ecf8427e is the empty file.",
    "Request ID 550e8400-e29b-41d4-a716-446655440000 was logged for the failed payment.",
    "Correlation id 7f3c2a10-9d4e-4b61-8c2f-0e5a9b1d3c77, please quote it.",
    "Run `pip install airlock==0.1.0` and then `airlock guard --listen 0.0.0.0:8080`.",
    "In the config set `timeout: 30s` and `retries: 3`; the port is 8443.",
    "Use `curl -H 'Accept: application/json' http://localhost:8080/v1/models`.",
    "The function returns `x = 4111 * 1111 + 1111 - 1111` which is just arithmetic.",
    "Call `api_key = os.environ['API_KEY']` instead of hard-coding the key.",
    "Set `password: ${DB_PASSWORD}` in the YAML and the secret comes from Vault.",
    "Open http://192.168.0.1 or http://10.0.0.1 to reach your router's admin page.",
    "Our status page lists 127.0.0.1 as the loopback address in the example.",
    "The documentation range 203.0.113.0/24 is used in all our examples.",
    "The OID 1.3.6.1.4.1.311.21.8 identifies the certificate template.",
    "ISBN 978-3-16-148410-0 is the printed edition; the e-book is ISBN 978-0-306-40615-7.",
    "ISSN 2049-3630 is the journal's identifier.",
    "Your booking reference is K9XQ2T; confirmation number 4456 7781 2209.",
    "Voucher code SAVE20-2024 gives 20 % off orders above €50.",
    "Your one-time code is 482913; it expires in 10 minutes.",
    "PIN 0000 is the factory default; change it in Settings.",
    "Ticket #48213 is assigned to the billing team; case 2024-118873 was closed.",
    "Reference 2024/11/0042 is on the bank transfer.",
    "The parcel weighs 2.5 kg and measures 30x20x10 cm.",
    "Coordinates 48.8584, 2.2945 are the Eiffel Tower.",
    "Room 4.12 on floor 4, building B, 10115 Berlin.",
    "Call our hotline 0800 123 4567 (free) or +44 800 123 4567 from abroad.",
    "Our US support line is 1-800-555-0199, open 24/7.",
    "Premium support: 0900 123 4567 (1,99 €/min).",
    "Write to support@acme.com, billing@acme.com or returns@acme.com.",
    "Emails from noreply@shop.example are automatic; do not reply.",
    "The image file is logo@2x.png and the retina version logo@3x.png.",
    "Clone with git@github.com:acme/guard.git and run make test.",
    "Phone-like product code 0301-2345-6789-A is printed on the box.",
    "The batch 2024-0315-0042 was recalled; lot 88213 is not affected.",
    "Between 08:00-12:00 and 13:00-17:30 the warehouse ships orders.",
    "Error 0x80070005 means access denied; error 404 means not found.",
    "The CVE-2024-3094 advisory does not affect version 5.4.6.",
    "Semantic version 1.0.0-rc.1+build.5 sorts before 1.0.0.",
    "The table has 1 2 3 4 5 6 7 8 9 as its header row.",
    "Account balance: 1 234 567,89 SEK as of 2024-03-31.",
    "MAC address 00:1A:2B:3C:4D:5E belongs to the router, not to you.",
    "std::vector<int> and std::map are used in the C++ example.",
    "The bearer of this letter is entitled to a refund.",
    "Authorization headers carry a bearer token; never paste yours into a chat.",
    "The private key never leaves the device; only the public key is uploaded.",
    "A JWT has three parts separated by dots: header.payload.signature.",
    "The secret to a good espresso is a fine grind.",
    "Use sk-learn's train_test_split for the example; it's not a key.",
    "Steuernummer auf der Rechnung: DE123456789 ist die USt-IdNr des Shops.",
    "VAT number FR40303265045 is our company's, printed on every invoice.",
    "Our company registration is HRB 12345 at Amtsgericht Berlin.",
    "Bank sort code 20-00-00 and BIC COBADEFFXXX belong to our shop's account.",
    "Flight LH 2024 departs at 10:45 from gate B12.",
    "The 4-digit code 1234 and the 6-digit code 123456 are examples only.",
    "Card ending in 4242 was used; we never see the full card number.",
    "Test card 4242 4242 4242 4242 is rejected in live mode.",  # a card number: not a hard negative by kind
    "The ticket price was 12.50 and the parking 3.20.",
    "Open 24/7, 365 days a year, since 1998.",
    "Dimensions: 1920x1080 pixels at 60 Hz, 27 inches.",
    "Temperature range -20 to +40 °C, humidity 10-90 %.",
    "Order 2024-03-15-000123 was created at 2024-03-15 10:22:31.",
    "Your loyalty number 7712 4490 3321 has 1,250 points.",
    "Shipment 1234 5678 9012 3456 is the container number.",
    "Zip codes 10115, 75008 and 28013 are in our delivery area.",
)
# One of them is a card number after all (a test card is still a card): labelled, not a negative.
_LABELLED_HARD = {"Test card 4242 4242 4242 4242 is rejected in live mode.": (("card", "4242 4242 4242 4242"),)}


def hard_negative_samples() -> list[Sample]:
    samples: list[Sample] = []
    for text in HARD_NEGATIVES:
        labels = tuple(
            Label(kind, text.index(value), text.index(value) + len(value))
            for kind, value in _LABELLED_HARD.get(text, ())
        )
        samples.append(Sample(text, labels, "", "hard-negative"))
    return samples


@functools.cache
def corpus() -> tuple[Sample, ...]:
    """Everything: labelled answers with PII, clean answers, hand-written hard negatives (built once per process)."""
    return (*pii_samples(), *clean_samples(), *hard_negative_samples())


# --- evaluation -----------------------------------------------------------------------------------


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) of missed labels
    false: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) of false findings

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def evaluate(samples: Iterable[Sample], find: Callable[[str], list[tuple[str, int, int]]]) -> dict[str, Score]:
    """Per kind (and ``all``): a label is found when a finding of its kind overlaps it; other findings are false."""
    scores: dict[str, Score] = {}
    for sample in samples:
        found = find(sample.text)
        for label in sample.labels:
            score = scores.setdefault(label.kind, Score())
            if any(k == label.kind and s < label.end and e > label.start for k, s, e in found):
                score.tp += 1
            else:
                score.fn += 1
                score.misses.append((label.kind, sample.text[label.start : label.end]))
        for kind, s, e in found:
            if not any(label.kind == kind and s < label.end and e > label.start for label in sample.labels):
                score = scores.setdefault(kind, Score())
                score.fp += 1
                score.false.append((kind, sample.text[s:e]))
    total = Score()
    for score in scores.values():
        total.tp += score.tp
        total.fp += score.fp
        total.fn += score.fn
    scores["all"] = total
    return scores
