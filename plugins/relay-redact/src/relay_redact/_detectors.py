"""The detectors: each a named regular expression that proposes candidates and a
validator that accepts, trims or rejects them, with the entity type it finds.

A regex alone over-matches (every 16-digit number is not a card), so every detector
whose format has a checksum or structural rules checks them: Luhn for cards, mod 97 for
IBANs, the INSEE key, the Steuer-ID's ISO 7064 digit, the SSA's never-issued SSN
ranges. Where a format has no checksum (phones, e-mail), the pattern itself is strict
about separators and context, trading some recall for precision on ordinary text.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from attrs import frozen

from relay_core.plugin import looks_like_api_key

__all__ = ["DETECTORS", "ENTITIES", "Detector", "Finding", "find_pii"]

ENTITIES = ("EMAIL", "PHONE", "CARD", "IBAN", "NATIONAL_ID", "IP", "API_KEY", "PRIVATE_KEY")

# Which entity wins when two detectors claim exactly the same span: the one whose
# validation is the strongest evidence (a checksum beats a shape).
_SPECIFICITY = {
    entity: rank
    for rank, entity in enumerate(
        ("PRIVATE_KEY", "IBAN", "CARD", "NATIONAL_ID", "EMAIL", "IP", "API_KEY", "PHONE")
    )
}

# accept(text, start, end) -> the end of the accepted value, or None. It may lie past
# ``end``: some patterns match only a value's start (an IBAN's country and check digits)
# and accept reads the rest.
Accept = Callable[[str, int, int], "int | None"]


@frozen
class Detector:
    """One kind of value: ``pattern`` proposes candidates, ``accept`` validates one and
    returns where it really ends (some candidates are trimmed), or ``None``.

    A pattern with a group named ``value`` proposes that group's span (the rest is
    context, matched first so the regex engine can scan for a literal). ``gate``, when
    set, is a cheap test (substring checks) the text must pass for the pattern to run
    at all: a regex without a literal start costs a step at every character."""

    name: str
    entity: str
    pattern: re.Pattern[str]
    accept: Accept
    description: str
    gate: Callable[[str], bool] | None = None

    def find(self, text: str) -> Iterator[Finding]:
        """This detector's values in ``text``, in the order ``pattern`` meets them: each
        candidate ``accept`` takes, ending where ``accept`` says, with ``entity`` and
        ``name``; nothing when ``gate`` turns the text down. They may overlap other
        detectors' findings: :func:`find_pii` keeps one of each overlap, ranking by
        entity (an entity of one's own after those of :data:`ENTITIES`)."""
        if self.gate is not None and not self.gate(text):
            return
        group = "value" if "value" in self.pattern.groupindex else 0
        for match in self.pattern.finditer(text):
            start, end = match.span(group)
            accepted = self.accept(text, start, end)
            if accepted is not None and accepted > start:
                yield Finding(self.entity, start, accepted, text[start:accepted], self.name)


@frozen
class Finding:
    """A detected value: its entity type, its span in the text, and the detector."""

    entity: str
    start: int
    end: int
    value: str
    detector: str


def _whole(check: Callable[[str], bool]) -> Accept:
    """An ``accept`` that takes the candidate whole when ``check(candidate)`` holds."""

    def accept(text: str, start: int, end: int) -> int | None:
        return end if check(text[start:end]) else None

    return accept


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


# ---------------------------------------------------------------------------- e-mail

# Letters are Unicode letters ("josé.garcía@example.com", internationalised domains), and
# the '@' may be URL-encoded ("?email=jane%40example.com", as form posts and webhooks
# carry it); "%2B" and the like are already local-part characters.
_EMAIL = re.compile(
    r"(?<![\w.%+-])[^\W_][\w.%+-]{0,63}(?:@|%40)"
    r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-])"
)


def _email_ok(value: str) -> bool:
    local = re.split("@|%40", value, maxsplit=1)[0]
    # "a..b@x.io" and "a.@x.io" are not addresses; the pattern already rules out digits-only
    # top-level domains, so "pkg@1.2.3" is not one either.
    return ".." not in local and not local.endswith(".")


# ---------------------------------------------------------------------------- phones

# "+44 20 7946 0958", "+1 (415) 555-0132", "+33 6 12 34 56 78", and the same with the
# international call prefix 00 for '+' ("0049 30 12345678"), as Europe writes them.
_PHONE_INTL = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(?\d{1,5}\)?){2,6}(?![\w-]|\.\d)"
)
# "(415) 555-0132", "415-555-0132", "415.555.0132": area and exchange codes start 2-9;
# with the trunk prefix 1 that toll-free numbers are printed with ("1-800-555-0199").
_PHONE_NANP = re.compile(
    r"(?<![\w+.-])(?<!\d )(?:1[ .-]?)?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}"
    r"(?![\w-]|\.\d)"
)
# Spanish numbers have no trunk 0: nine digits starting 9 (landlines) or 6/7 (mobiles),
# printed "912 345 678" or "91 234 56 78". Nine digits in groups is also how large
# numbers are written in some locales, so the groups and the separator are strict and a
# digit group next to them (a longer number) rules the candidate out.
_PHONE_ES = re.compile(
    r"(?<![\w+.,-])(?<!\d[ .])(?:[679]\d{2}([ .])\d{3}\1\d{3}|9\d([ .])\d{3}\2\d{2}\2\d{2})"
    r"(?![\w-]|[.,]\d| \d)"
)
# National numbers with a trunk 0: "020 7946 0958", "07700 900123", "06 12 34 56 78",
# "030-1234-5678", "(030) 1234 5678".
_PHONE_TRUNK = re.compile(
    r"(?<![\w+.-])(?:0\d{1,4}|\(0\d{1,4}\))(?:[ .-]?\d{2,4}){2,4}(?![\w-]|\.\d)"
)


def _phone_intl_ok(value: str) -> bool:
    digits = _digits(value)
    if value.startswith("00"):
        # Without the '+' a separator is what tells "0049 30 1234567" from an id.
        if not any(c in " .-(" for c in value):
            return False
        digits = digits[2:]
        if len(digits) < 10:  # "0049-2201-77" is an order number: E.164 numbers are longer
            return False
    if not 8 <= len(digits) <= 15:  # E.164 allows at most 15 digits
        return False
    return value.count("(") == value.count(")") and "  " not in value


def _phone_nanp_ok(value: str) -> bool:
    # The exchange 555 with lines 0100-0199 is fiction's range, but still a phone shape;
    # what matters is that a date or a version cannot look like this.
    digits = _digits(value)
    return len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")


def _phone_trunk_ok(value: str) -> bool:
    digits = _digits(value)
    # "00" is the international prefix, not a trunk 0: phone_international reads those.
    if not 10 <= len(digits) <= 12 or digits.startswith("00"):
        return False
    # Separators are what tell a phone from an order number: require at least one, and
    # only one kind.
    separators = {c for c in value if c in " .-"}
    return len(separators - {" "}) <= 1 and bool(separators or "(" in value)


# ---------------------------------------------------------------------------- cards

_CARD = re.compile(
    r"(?<![\w-])(?:"
    r"\d{13,19}"  # unbroken
    r"|\d{4}([ .-])\d{4}\1\d{4}\1\d{4}"  # 4-4-4-4 (Visa, Mastercard, Discover, JCB...)
    r"|\d{4}([ .-])\d{6}\2\d{4,5}"  # 4-6-5 (Amex) and 4-6-4 (Diners)
    r")(?![\w-]|\.\d)"
)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    """The number starts with an issuer prefix whose cards have this length."""
    n = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    return (
        (digits[0] == "4" and n in (13, 16, 19))  # Visa
        or ((51 <= two <= 55 or 2221 <= four <= 2720) and n == 16)  # Mastercard
        or (two in (34, 37) and n == 15)  # American Express
        or ((four == 6011 or two == 65 or 644 <= four // 10 <= 649) and 16 <= n <= 19)
        or (622126 <= six <= 622925 and 16 <= n <= 19)  # Discover / UnionPay co-brand
        or (two == 62 and 16 <= n <= 19)  # UnionPay
        or (3528 <= four <= 3589 and 16 <= n <= 19)  # JCB
        or ((two in (36, 38, 39) or 300 <= four // 10 <= 305) and 14 <= n <= 19)  # Diners
        or (four in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763) and n >= 13)
    )


def _card_ok(value: str) -> bool:
    digits = _digits(value)
    return 13 <= len(digits) <= 19 and _card_brand_ok(digits) and luhn_ok(digits)


# ---------------------------------------------------------------------------- IBAN

# Total length of the IBAN per country (ISO 13616 registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

# The pattern finds where an IBAN may start; the validator reads on through the text to
# the country's length (single spaces allowed between characters, as printed in groups of
# four, or with dashes), so neither trailing words nor the next IBAN are swallowed.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?=[ -]?[A-Za-z0-9])", re.ASCII)


def iban_ok(iban: str) -> bool:
    """The ISO 7064 mod 97-10 check of an IBAN written without spaces."""
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(c, 36)) for c in rearranged.upper())
    return int(number) % 97 == 1


def _accept_iban(text: str, start: int, end: int) -> int | None:
    length = IBAN_LENGTHS.get(text[start : start + 2].upper())
    if length is None:
        return None
    count, position, separator = 0, start, ""
    while position < len(text) and count < length:
        char = text[position]
        if char.isascii() and char.isalnum():
            count += 1
        elif char not in " -" or not text[position - 1].isalnum() or separator not in ("", char):
            break  # one kind of separator, single, between characters
        else:
            separator = char
        position += 1
    if count < length or (position < len(text) and text[position].isalnum()):
        return None  # too short, or the value runs on: part of a longer token
    value = text[start:position]
    if not (value.isupper() or value.islower()):
        return None  # mixed case: words, not an IBAN
    return position if iban_ok(value.replace(separator or " ", "")) else None


# ---------------------------------------------------------------------------- national IDs

# US Social Security number: AAA-GG-SSSS (dashes or spaces, the same both times).
_US_SSN = re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])")


def _ssn_ok(value: str) -> bool:
    digits = _digits(value)
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    # Never issued: area 000, 666 and 900-999; group 00; serial 0000.
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


# UK National Insurance number: two letters, six digits, a suffix A-D ("AB 12 34 56 C").
_UK_NINO = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])")
_NINO_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def _nino_ok(value: str) -> bool:
    first, second = value[0], value[1]
    return first not in "DFIQUV" and second not in "DFIOQUV" and value[:2] not in _NINO_BAD_PREFIXES


# French INSEE number (NIR): sex, year, month, department (2A/2B for Corsica), commune,
# order, then a two-digit key; printed "1 84 12 76 451 089 46" or unbroken.
_FR_INSEE = re.compile(
    r"(?<![\w-])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}"
    r"(?![\w-])"
)


def _insee_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    return int(compact[13:]) == 97 - int(body) % 97


# German tax id (Steuerliche Identifikationsnummer): 11 digits, no leading 0, printed
# "12 345 678 901" or unbroken; ISO 7064 MOD 11,10 check digit; in the first ten
# digits exactly one digit occurs twice or three times and none other repeats.
_DE_STEUER_ID = re.compile(r"(?<![\w+.-])[1-9]\d ?\d{3} ?\d{3} ?\d{3}(?![\w-]|\.\d)")


def steuer_id_ok(digits: str) -> bool:
    """The check digit and digit-frequency rules of a German Steuer-ID."""
    if len(digits) != 11 or digits[0] == "0":
        return False
    counts = sorted(Counter(digits[:10]).values())
    if counts[-1] not in (2, 3) or counts[-2:-1] == [counts[-1]] or max(counts[:-1]) != 1:
        return False
    product = 10
    for char in digits[:10]:
        total = (int(char) + product) % 10 or 10
        product = (total * 2) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


def _steuer_id_ok(value: str) -> bool:
    spaces = value.count(" ")
    return spaces in (0, 3) and steuer_id_ok(_digits(value))


# ---------------------------------------------------------------------------- IP addresses

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)")
# "version 1.2.3.4", "v10.0.0.1", "build 4.2.0.17" are versions, not addresses.
_VERSION_BEFORE = re.compile(r"(?:\bv|\bver\.?|version|release|build|rev\.?)\s*$", re.IGNORECASE)


_NETMASK_OCTETS = {"0", "128", "192", "224", "240", "248", "252", "254", "255"}


def _accept_ipv4(text: str, start: int, end: int) -> int | None:
    if _VERSION_BEFORE.search(text[max(0, start - 12) : start]):
        return None
    value = text[start:end]
    octets = value.split(".")
    if octets[0] == "255" and set(octets) <= _NETMASK_OCTETS:
        return None  # a netmask
    address = ipaddress.IPv4Address(value)
    # Loopback and "any" (127.0.0.1, 0.0.0.0) identify no one; private ranges are kept
    # (they map a network's inside).
    return None if address.is_loopback or address.is_unspecified else end


_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
    r"(?![\w:]|\.\w)"
)


def _ipv6_ok(value: str) -> bool:
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return False
    # "1::2" (a Python slice) and "::" parse, but carry too little to be an address anyone
    # needs hidden; real ones have several groups.
    return sum(c in "0123456789abcdefABCDEF" for c in value) >= 4 and value.count(":") >= 3


# ---------------------------------------------------------------------------- private keys

# A PEM private key, whatever the algorithm or wrapping: "RSA", "EC", "OPENSSH", "DSA",
# "ENCRYPTED", PKCS#8's bare "PRIVATE KEY", PGP's "PRIVATE KEY BLOCK". Taken from BEGIN
# to END with anything between (headers, line-wrapped base64, the "\n" escapes of a key
# inside JSON); a key pasted without its END line is taken to the end of its base64.
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
# After BEGIN when END is missing: line breaks (real, or escaped in a JSON string), then
# header lines ("Proc-Type: 4,ENCRYPTED") or whole lines of base64; a line of prose ends it.
_LINE_BREAK = r"[ \t]*(?:\r?\n|\\r\\n|\\n)[ \t]*"
_PEM_BODY = re.compile(
    rf"(?:(?:{_LINE_BREAK})+(?:[A-Za-z][A-Za-z0-9-]*: [^\r\n\\]*"
    rf"|[A-Za-z0-9+/]{{16,}}={{0,2}}|[A-Za-z0-9+/]*={{1,2}})(?=[ \t]*(?:\r|\n|\\[rn]|$)))*"
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{16}")
# How far the END line may be: an 8192-bit RSA key is about 6.5 KB of PEM.
_PEM_MAX = 16_384


def _accept_private_key(text: str, start: int, end: int) -> int | None:
    limit = min(len(text), end + _PEM_MAX)
    next_begin = text.find("-----BEGIN ", end, limit)
    closing = _PEM_END.search(text, end, next_begin if next_begin != -1 else limit)
    if closing is not None and _BASE64_RUN.search(text, end, closing.start()):
        return closing.end()
    body = _PEM_BODY.match(text, end, limit)
    # Only the BEGIN line ("files start with -----BEGIN PRIVATE KEY-----") is prose.
    return body.end() if body is not None and body.end() > end else None


# ---------------------------------------------------------------------------- API keys

# Well-known key formats. relay_core.secrets knows the LLM providers' keys; these add the
# other services whose keys turn up pasted into prompts.
_KNOWN_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"sk-(?:ant-|proj-|or-)?[A-Za-z0-9_\-]{16,}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|AIza[0-9A-Za-z_\-]{30,}"
    r"|gsk_[A-Za-z0-9]{20,}"
    r"|xai-[A-Za-z0-9]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|npm_[A-Za-z0-9]{36}"
    r"|SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"
    r"|glpat-[A-Za-z0-9_\-]{20,}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|(?:xox[abeprs]|xapp)-[A-Za-z0-9-]{10,}"
    r"|xoxe\.xox[bp]-[A-Za-z0-9-]{10,}"
    # A JWT whole: the header (a JSON object, so "eyJ"), the payload, the signature;
    # an encrypted one (JWE) has five parts. The signature may be empty ('alg: none').
    r"|eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]{4,}){1,3}\.[A-Za-z0-9_-]*"
    r")"
)
# An Azure storage or Service Bus connection string's key: the value, up to ';'.
_AZURE_KEY = re.compile(
    r"(?:Account|SharedAccess)Key=(?P<value>[A-Za-z0-9+/]{30,}={0,2})(?![A-Za-z0-9+/=])"
)
# An AWS secret access key is 40 characters of base64 and has no prefix: alone it is any
# base64 string, so it is taken only with AWS words shortly before it (the credentials
# file, the environment variable, STS's JSON, prose naming AWS).
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_CONTEXT = re.compile(r"aws|amazon|secret.?access|\bA(?:KI|SI)A[0-9A-Z]{16}\b", re.IGNORECASE)


def _maybe_aws(text: str) -> bool:
    # Case-insensitive regex search is slow; these substrings cover _AWS_CONTEXT.
    return any(word in text for word in _AWS_WORDS)


_AWS_WORDS = ("aws", "AWS", "Aws", "mazon", "MAZON", "ecret", "ECRET", "AKIA", "ASIA")


def _accept_aws_secret(text: str, start: int, end: int) -> int | None:
    value = text[start:end]
    if _HEX.match(value) or not (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
    ):
        return None
    return end if _AWS_CONTEXT.search(text, max(0, start - 120), start) else None


_BEARER = re.compile(r"(?<=[Bb]earer )[A-Za-z0-9._\-]{16,}")
# Opaque tokens: a long run of key characters, judged by relay_core's own heuristic.
# '=' ends a token ("API_KEY=...") except as base64 padding.
_OPAQUE = re.compile(r"(?<![A-Za-z0-9_\-.+/])[A-Za-z0-9_\-+]{24,}={0,2}(?![A-Za-z0-9_\-+=/])")
# An identifier made of words: camelCase or snake_case humps and at most one number
# ("parseHttpResponseHeaders2024Compat"). Random keys almost never split this way.
_WORDS = re.compile(
    r"(?:[A-Z]?[a-z]{2,}|[A-Z]{2,}(?![a-z])|[_\-])+(?:\d+(?:[A-Z]?[a-z]{2,}|[_\-])*)?"
)


def _opaque_key_ok(value: str) -> bool:
    # Hex digests (git SHAs, checksums, dashless UUIDs) are everywhere in technical text
    # and rarely secret; a hex-only key is missed rather than every commit id redacted.
    return looks_like_api_key(value) and not _HEX.match(value) and not _WORDS.fullmatch(value)


def _in_public_pem(text: str, start: int) -> bool:
    """Whether ``start`` is inside a PEM block that is not a private key: a certificate
    or a public key is base64 too, and public (private ones are taken whole)."""
    begin = text.rfind("-----BEGIN ", max(0, start - _PEM_MAX), start)
    return (
        begin != -1
        and text.find("-----END ", begin, start) == -1
        and not _PEM_BEGIN.match(text, begin)
    )


# An OpenSSH public key line: "ssh-rsa AAAAB3NzaC1yc2E... user@host".
_SSH_PUBLIC = re.compile(r"(?:ssh-[a-z0-9]+|ecdsa-sha2-[a-z0-9]+|sk-[a-z0-9-]+@openssh\.com) $")


def _accept_opaque_key(text: str, start: int, end: int) -> int | None:
    if not _opaque_key_ok(text[start:end]) or _in_public_pem(text, start):
        return None
    if text.startswith("AAAA", start) and _SSH_PUBLIC.search(text, max(0, start - 48), start):
        return None  # public, and every OpenSSH public key starts "AAAA"
    return end


def _bearer_ok(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


_HEX = re.compile(r"^[0-9a-fA-F]+$")

DETECTORS: tuple[Detector, ...] = (
    Detector("email", "EMAIL", _EMAIL, _whole(_email_ok),
             "An address local@domain.tld (Unicode letters, '@' or '%40'); no '..' in the "
             "local part, an alphabetic TLD.",
             gate=lambda text: "@" in text or "%40" in text),
    Detector("phone_international", "PHONE", _PHONE_INTL, _whole(_phone_intl_ok),
             "+country code and 8-15 digits in groups: '+44 20 7946 0958'."),
    Detector("phone_nanp", "PHONE", _PHONE_NANP, _whole(_phone_nanp_ok),
             "North American '(415) 555-0132', '415-555-0132', '415.555.0132'."),
    Detector("phone_es", "PHONE", _PHONE_ES, _whole(lambda _: True),
             "Spanish numbers without +34: '912 345 678', '612 345 678', '91 234 56 78'."),
    Detector("phone_trunk", "PHONE", _PHONE_TRUNK, _whole(_phone_trunk_ok),
             "National numbers with a trunk 0 and separators: '020 7946 0958'."),
    Detector("card", "CARD", _CARD, _whole(_card_ok),
             "13-19 digits (unbroken, 4-4-4-4 or 4-6-5), issuer prefix and Luhn check."),
    Detector("iban", "IBAN", _IBAN, _accept_iban,
             "Country code, check digits, the country's length, mod 97 == 1."),
    Detector("us_ssn", "NATIONAL_ID", _US_SSN, _whole(_ssn_ok),
             "US SSN AAA-GG-SSSS outside the never-issued ranges (000, 666, 9xx, 00, 0000)."),
    Detector("uk_nino", "NATIONAL_ID", _UK_NINO, _whole(_nino_ok),
             "UK National Insurance number with HMRC's prefix rules: 'AB 12 34 56 C'."),
    Detector("fr_insee", "NATIONAL_ID", _FR_INSEE, _whole(_insee_ok),
             "French INSEE/NIR number, 13 digits and the 97-complement key."),
    Detector("de_steuer_id", "NATIONAL_ID", _DE_STEUER_ID, _whole(_steuer_id_ok),
             "German Steuer-ID, 11 digits, ISO 7064 MOD 11,10 and the digit-frequency rule."),
    Detector("ipv4", "IP", _IPV4, _accept_ipv4,
             "Dotted quad, each octet 0-255; not after 'v'/'version'/'build'."),
    Detector("ipv6", "IP", _IPV6, _whole(_ipv6_ok),
             "Any form Python's ipaddress accepts, with at least 3 colons and 4 hex digits.",
             gate=lambda text: "::" in text or text.count(":") >= 3),
    Detector("api_key_known", "API_KEY", _KNOWN_KEY, _whole(lambda _: True),
             "Known key formats: OpenAI, Anthropic, Google, Groq, xAI, GitHub, GitLab, "
             "Hugging Face, AWS access key ids, Slack, Stripe, npm, SendGrid, JWTs."),
    Detector("api_key_aws_secret", "API_KEY", _AWS_SECRET, _accept_aws_secret,
             "A 40-character AWS secret access key (base64, mixed case and digits) "
             "within 120 characters after 'aws', 'secret access' or an access key id.",
             gate=_maybe_aws),
    Detector("api_key_azure", "API_KEY", _AZURE_KEY, _whole(lambda _: True),
             "The base64 value of AccountKey= / SharedAccessKey= in a connection string."),
    Detector("private_key", "PRIVATE_KEY", _PEM_BEGIN, _accept_private_key,
             "A PEM private key (RSA, EC, OpenSSH, PKCS#8, encrypted, PGP) from BEGIN to "
             "END, or to the end of its base64 when the END line is missing."),
    Detector("api_key_bearer", "API_KEY", _BEARER, _whole(_bearer_ok),
             "The token after 'Bearer ' (letters and digits, 16+ characters)."),
    Detector("api_key_opaque", "API_KEY", _OPAQUE, _accept_opaque_key,
             "A 24+ character token mixing letters and digits with a 16-character "
             "alphanumeric run (relay_core.secrets.looks_like_api_key); not hex-only, "
             "not public (a certificate, a public key)."),
)  # fmt: skip


# What every value DETECTORS accept contains: a digit (phones, cards, IBANs, national
# ids, IPv4, and the digit a bearer token needs), '@' (e-mail), ':' (IPv6), 'eyJ' (a
# JWT, whose parts may be short), 'BEGIN' (a PEM key) or a run of 15 key characters
# (every other key format, the shortest being Slack's 'xoxb-' and 10 more). Text with
# none of them, most prompts in the Latin alphabet, skips the detectors.
_MAYBE = re.compile(r"[\d@:]|eyJ|-BEGIN |[A-Za-z0-9_+\-]{15}")


def find_pii(
    text: str,
    entities: Iterable[str] = ENTITIES,
    detectors: Iterable[Detector] = DETECTORS,
) -> list[Finding]:
    """The values in ``text`` of the given entity types, in order, never overlapping.

    When candidates overlap, the longest wins, then the most specific entity (IBAN,
    CARD, NATIONAL_ID, EMAIL, IP, API_KEY, PHONE), then the earliest: the same text
    always gives the same findings.
    """
    if detectors is DETECTORS and not _MAYBE.search(text):
        return []
    wanted = set(entities)
    candidates = [
        finding
        for detector in detectors
        if detector.entity in wanted
        for finding in detector.find(text)
    ]
    # An entity of one's own (a detector passed in) ranks after the built-in ones.
    last = len(_SPECIFICITY)
    candidates.sort(key=lambda f: (f.start - f.end, _SPECIFICITY.get(f.entity, last), f.start))
    chosen: list[Finding] = []
    for finding in candidates:
        if all(finding.end <= c.start or finding.start >= c.end for c in chosen):
            chosen.append(finding)
    return sorted(chosen, key=lambda f: f.start)
