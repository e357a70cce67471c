"""Writes ``pii_sample.jsonl``: the labelled sample the precision/recall test measures.

Run it from this directory (``python make_pii_sample.py``) after changing a line; the
output is deterministic. Lines are written with inline labels, ``[[EMAIL:a@b.io]]``,
turned into ``{"text": ..., "entities": [{"type", "start", "end", "value"}]}``. Every
value is synthetic: example domains, fictional phone ranges (555-01xx, Ofcom's drama
numbers), card and IBAN numbers built here with valid checksums, the IPv6 documentation
prefix. Lines without labels are negatives: dates, times, prices, order and tracking
numbers, versions, UUIDs, hashes, ISBNs, code, and near-misses that fail a checksum.

The checksum arithmetic here is written independently of the plugin's validators, from
the standards (ISO 13616 for IBAN, ISO/IEC 7812 Luhn, INSEE's key, ISO 7064 MOD 11,10).
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from pathlib import Path

rng = random.Random(20240917)


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        digits = [int(c) for c in body + check]
        total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
        if total % 10 == 0:
            return body + check
    raise AssertionError


def luhn_broken(prefix: str, length: int) -> str:
    good = luhn_complete(prefix, length)
    return good[:-1] + str((int(good[-1]) + 3) % 10)


def iban(country: str, bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def grouped(value: str, size: int = 4) -> str:
    return " ".join(value[i : i + size] for i in range(0, len(value), size))


def insee(sex: int, year: int, month: int, dept: str, commune: int, order: int) -> str:
    body = f"{sex}{year:02d}{month:02d}{dept}{commune:03d}{order:03d}"
    number = int(body.replace("2A", "19").replace("2B", "18"))
    return f"{body}{97 - number % 97:02d}"


def steuer_id() -> str:
    while True:
        digits = [rng.randrange(1, 10)] + [rng.randrange(10) for _ in range(9)]
        counts = sorted(digits.count(d) for d in set(digits))
        if counts[-1] != 2 or counts.count(2) != 1:
            continue
        product = 10
        for d in digits:
            product = ((((d + product) % 10) or 10) * 2) % 11
        check = (11 - product) % 10
        return "".join(map(str, digits)) + str(check)


def token(prefix: str, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    while True:
        body = "".join(rng.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in body) and any(c.isalpha() for c in body):
            return prefix + body


FIRST = ["jane", "omar", "li.wei", "maria", "k.okafor", "sven", "aiko", "pat", "noor", "diego"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example.co.uk", "test.io"]
emails = [f"{rng.choice(FIRST)}{rng.choice(['', '.smith', '+billing', '_1987', '-ops'])}"
          f"@{rng.choice(DOMAINS)}" for _ in range(40)]  # fmt: skip

phones = [
    "+44 20 7946 0958", "+1 (415) 555-0132", "(212) 555-0187", "646-555-0199",
    "+33 6 12 34 56 78", "06 12 34 56 78", "020 7946 0321", "07700 900123",
    "+49 30 1234 5678", "030 1234 5678", "312.555.0144", "+61 2 9876 5432",
    "+1 202-555-0175", "0161 496 0754", "+353 1 555 0142", "(0)20 7946 0000",
]  # fmt: skip
phones = [p for p in phones if not p.startswith("(0)")]

cards = [luhn_complete(p, n) for p, n in [
    ("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16),
    ("65", 16), ("3530", 16), ("36", 14), ("4", 16), ("4", 16), ("52", 16), ("6011", 16),
]]  # fmt: skip
bad_cards = [luhn_broken("4", 16), luhn_broken("51", 16), luhn_broken("37", 15)]

ibans = [
    iban("DE", "370400440532013000"), iban("GB", "WEST12345698765432"),
    iban("FR", "20041010050500013M02606"), iban("NL", "ABNA0417164300"),
    iban("ES", "21000418450200051332"), iban("IT", "X0542811101000000123456"),
    iban("BE", "539007547034"), iban("CH", "0076201162385295" + "7"),
    iban("AT", "1904300234573201"), iban("PL", "109010140000071219812874"),
    iban("SE", "50000000058398257466"), iban("NO", "86011117947"),
    iban("IE", "AIBK93115212345678"), iban("PT", "000201231234567890154"),
]  # fmt: skip


def bad_iban(value: str) -> str:
    return value[:2] + f"{(int(value[2:4]) + 1) % 100:02d}" + value[4:]


def ssn() -> str:
    return f"{rng.randrange(1, 899):03d}-{rng.randrange(1, 99):02d}-{rng.randrange(1, 9999):04d}"


ninos = ["AB 12 34 56 C", "JG103759A", "CE 48 91 02 B", "WP 65 43 21 D", "HR901234A"]
insees = [insee(1, 84, 12, "76", 451, 89), insee(2, 91, 3, "2A", 4, 112),
          insee(1, 67, 7, "13", 55, 301), insee(2, 55, 11, "75", 116, 42)]  # fmt: skip
steuers = [steuer_id() for _ in range(5)]

ipv4s = ["192.168.1.24", "10.0.0.17", "172.16.254.3", "203.0.113.45", "198.51.100.7",
         "8.8.4.4", "100.64.12.9", "192.0.2.255"]  # fmt: skip
ipv6s = ["2001:db8::8a2e:370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
         "fe80::1ff:fe23:4567:890a", "2001:db8:1234::42"]  # fmt: skip

keys = [
    token("sk-proj-", 40), token("sk-ant-api03-", 48), token("AIza", 35),
    token("ghp_", 36), token("gsk_", 40), "AKIA" + "".join(rng.choice(string.ascii_uppercase
    + string.digits) for _ in range(16)), token("xoxb-", 30, string.digits + "abcdef-"),
    token("sk_live_", 24), token("hf_", 34), token("", 32),
]  # fmt: skip


class Pool:
    def __init__(self, values: list[str]) -> None:
        self.values, self.index = values, 0

    def __call__(self) -> str:
        value = self.values[self.index % len(self.values)]
        self.index += 1
        return value


E, P, C, B, S = (
    Pool(emails),
    Pool(phones),
    Pool(cards),
    Pool(ibans),
    Pool([ssn() for _ in range(12)]),
)
N, F, D = Pool(ninos), Pool(insees), Pool(steuers)
V4, V6, K = Pool(ipv4s), Pool(ipv6s), Pool(keys)


def L(kind: str, value: str) -> str:
    return f"[[{kind}:{value}]]"


def email() -> str:
    return L("EMAIL", E())


def phone() -> str:
    return L("PHONE", P())


def card(style: int = 0) -> str:
    value = C()
    if style == 1 and len(value) == 16:
        value = grouped(value)
    elif style == 2 and len(value) == 16:
        value = "-".join(value[i : i + 4] for i in range(0, 16, 4))
    elif style == 1 and len(value) == 15:
        value = f"{value[:4]} {value[4:10]} {value[10:]}"
    return L("CARD", value)


def iban_(style: int = 0) -> str:
    value = B()
    return L("IBAN", grouped(value) if style else value)


def nid(kind: str) -> str:
    value = {"ssn": S, "nino": N, "insee": F, "steuer": D}[kind]()
    if kind == "insee" and rng.random() < 0.5:
        cuts = [(0, 1), (1, 3), (3, 5), (5, 7), (7, 10), (10, 13), (13, 15)]
        value = " ".join(value[a:b] for a, b in cuts)
    if kind == "steuer" and rng.random() < 0.5:
        value = f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}"
    return L("NATIONAL_ID", value)


def ip(v6: bool = False) -> str:
    return L("IP", V6() if v6 else V4())


def key() -> str:
    return L("API_KEY", K())


def lines() -> list[str]:
    out = [
        # -- e-mail
        f"Hi team, please loop in {email()} on the renewal thread before Friday.",
        f"Customer wrote from {email()}: 'my parcel never arrived'.",
        f"Reply-To: {email()}\nSubject: invoice INV-2024-0042 overdue",
        f"CC {email()} and {email()}; the vendor contact is {email()}.",
        f"Can you reset the password for {email()}? She is locked out since 09:14.",
        f"Escalated by {email()} (priority P2, ticket #48213).",
        f'user.email = "{email()}"  # fixture',
        f"From: Support <{email()}>\nTo: {email()}",
        f"My new address is {email()} - the old one bounced.",
        f"Send the signed NDA to {email()}, thanks!",
        f"Unsubscribe {email()} from the weekly digest.",
        f"git config user.email {email()}",
        # -- phones
        f"Call me back on {phone()} after 6pm.",
        f"The front desk number is {phone()}; ask for Priya.",
        f"Mobile: {phone()} | Office: {phone()}",
        f"He left a voicemail from {phone()} at 14:32 yesterday.",
        f"Emergency contact: Tom Reed, {phone()}.",
        f"Please text {phone()} when the courier arrives.",
        f"Fax (yes, fax) {phone()}, attention accounts payable.",
        f"Her number changed to {phone()} last month.",
        f"Support hotline {phone()} is open 8:00-20:00 CET.",
        f"Ring {phone()} or {phone()} if the alarm triggers.",
        f"Contact details: {email()}, {phone()}.",
        f"Booking confirmed for 2 guests; we will call {phone()} if anything changes.",
        f"Reach the landlord at {phone()} regarding flat 3B.",
        f"Dial {phone()} and enter conference code 483 221#.",
        # -- cards
        f"Charge the card {card(1)} exp 09/27 for the annual plan.",
        f"The refund goes back to {card()} within 5-10 business days.",
        f"Card on file: {card(2)}, billing ZIP 94107.",
        f"I paid with {card(1)} but was charged twice ($49.99 each).",
        f"Use {card()} for the test checkout in staging.",
        f"Amex {card(1)} was declined, reason code 05.",
        f"Update payment method to {card(1)}, CVV sent separately.",
        f"Her Visa ending 1111 is fine, but {card()} keeps failing.",
        f"Chargeback filed on {card(2)} for order ORD-88812.",
        f"Card: {card()}  Amount: EUR 1.250,00  Date: 2024-03-02",
        f"PAN {card()} must never be logged in plaintext.",
        f"Please store {card(1)} for recurring billing.",
        # -- IBAN
        f"Please wire the deposit to {iban_(1)} (reference: LEASE-7781).",
        f"Our bank details: IBAN {iban_()}, BIC DEUTDEFF.",
        f"Refund to IBAN {iban_(1)} please, not to the card.",
        f"Salary account changed to {iban_()} from next month.",
        f"Beneficiary: ACME GmbH, {iban_(1)}.",
        f"SEPA mandate for {iban_()} signed on 12.04.2024.",
        f"IBAN: {iban_(1)}\nAmount: 2,400.00 EUR",
        f"Transfer 300 CHF to {iban_()} by Monday.",
        f"Can you check {iban_()}? The bank says the account is closed.",
        f"Old account {iban_(1)} should be removed from the vendor master.",
        f"Pay invoice 2024-117 into {iban_()}.",
        f"Direct debit from {iban_(1)} failed twice.",
        # -- national IDs
        f"Applicant SSN: {nid('ssn')}, DOB 1984-07-12.",
        f"The W-2 shows SSN {nid('ssn')} but the name is misspelled.",
        f"Verify identity: SSN {nid('ssn')}, last four only on calls.",
        f"My social is {nid('ssn')}, please update the 1099.",
        f"Employee record: {nid('ssn')} / hired 2019-03-01.",
        f"NI number {nid('nino')} for the new starter.",
        f"National Insurance: {nid('nino')} (tax code 1257L).",
        f"HMRC letter references {nid('nino')}.",
        f"Payroll needs the NINO {nid('nino')} before the 25th.",
        f"Numéro de sécurité sociale : {nid('insee')}.",
        f"Carte Vitale du patient : {nid('insee')}, mutuelle MGEN.",
        f"N° INSEE {nid('insee')} à vérifier.",
        f"Steuer-ID: {nid('steuer')} (bitte für die Lohnabrechnung).",
        f"Meine Steueridentifikationsnummer ist {nid('steuer')}.",
        f"IdNr {nid('steuer')} laut Bescheid vom 03.05.2023.",
        f"Tax ID (DE) {nid('steuer')} for the contractor.",
        f"SSN {nid('ssn')} and NINO {nid('nino')} both on the form.",
        # -- IP addresses
        f"The login came from {ip()} at 03:12 UTC, which is unusual.",
        f"Whitelist {ip()} and {ip()} on the firewall.",
        f"ssh deploy@{ip()} -p 2222",
        f"Failed requests from {ip()} spiked to 1,200/min.",
        f"Client IP {ip(True)} hit the rate limit.",
        f"Set DNS to {ip()} and gateway to {ip()}.",
        f"Peer {ip(True)} dropped the BGP session.",
        f"nginx: connect() failed for upstream {ip()}:8080",
        f"IPv6 of the box: {ip(True)}",
        f"Blocked {ip(True)} after 50 failed logins.",
        f"curl http://{ip()}/health returned 503",
        f"The VPN assigned {ip()} to my laptop.",
        # -- API keys
        f"OPENAI_API_KEY={key()}",
        f"Here is my key {key()}, why do I get 401?",
        f"export GOOGLE_API_KEY={key()}",
        f"The token {key()} was committed to the repo, rotate it!",
        f"headers = {{'x-api-key': '{key()}'}}",
        f"GROQ key: {key()}",
        f"aws_access_key_id = {key()}",
        f"SLACK_BOT_TOKEN={key()}",
        f'stripe.api_key = "{key()}"',
        f"HF token {key()} has write scope.",
        f"Service secret: {key()}",
        # -- mixed
        f"Lead: Dana Cho, {email()}, {phone()}, company card {card(1)}.",
        f"KYC: SSN {nid('ssn')}, IBAN {iban_(1)}, email {email()}.",
        f"Incident 2291: key {key()} used from {ip()} to read {email()}'s mailbox.",
        f"Move €500 from {iban_()} and notify {email()}.",
        f"Caller {phone()} gave card {card()} and postcode SW1A 1AA.",
        f"Ticket from {email()} (IP {ip()}): 'order 100-2345-678 missing'.",
        f"Onboarding: NI {nid('nino')}, phone {phone()}, IBAN {iban_()}.",
        f"Dossier : {nid('insee')}, tél. {phone()}, courriel {email()}.",
        f"Vertrag: Steuer-ID {nid('steuer')}, IBAN {iban_(1)}, Tel. {phone()}.",
        f"Debug dump: user={email()} ip={ip()} token={key()}",
        f"Send receipts for {card(2)} to {email()}.",
        f"Login from {ip(True)} for account {email()} blocked.",
        # -- hard cases, kept honest: some of these are known misses (see the README)
        f"URGENT from {L('EMAIL', 'JOHN.DOE@EXAMPLE.COM')} - please call",
        f"Tel: {L('PHONE', '+49 (0)30 1234 5678')} (Zentrale)",
        f"call me at {L('PHONE', '4155550132')} tomorrow",
        f"my cell is {L('PHONE', '07700900456')}",
        f"ssn {L('NATIONAL_ID', '219456789')} on the paper form",
        f"nino {L('NATIONAL_ID', 'ab123456c')} typed in lower case",
        f"DD_API_KEY={L('API_KEY', '9f2c4e1a7b3d5f60a8c2e4b6d1f3a5c7')}",
        f"proxy at {L('IP', '10.1.2.3')}:443 and backup {L('IP', '2001:db8:0:0:1::1')}",
        f"pay to {L('IBAN', 'gb33bukb20201555555555')} (lower case)",
        f"{email()} asked us to delete SSN {nid('ssn')} from the CRM.",
    ]
    # -- negatives: ordinary text that must stay as it is
    out += [
        "The meeting moved to 2024-01-15 at 10:30, room 4.12.",
        "Deadline: 15/01/2024 17:00 CET; reminder on 01.02.2024.",
        "Order #123456789 shipped on March 3, 2025 via DHL.",
        "Your order ORD-2024-000123 total is $1,299.99 incl. tax.",
        "Invoice INV-000245 dated 2023-11-30, amount EUR 4.560,00.",
        "Tracking number 1Z999AA10123456784 (UPS Ground).",
        "USPS tracking 9400 1000 0000 0000 0000 00 shows 'in transit'.",
        "FedEx 7489 1234 5678 was delivered at 11:02.",
        "Upgraded from Python 3.11.4 to 3.12.1 and Django 4.2.7.",
        "Windows build 10.0.19041.1415 is affected; see KB5009543.",
        "Released version 2.14.0.3 with the fix; v1.2.3.4 is deprecated.",
        "Request id 550e8400-e29b-41d4-a716-446655440000 timed out.",
        "Trace: 4bf92f3577b34da6a3ce929d0e0e4736, span 00f067aa0ba902b7.",
        "Fixed in commit 3f786850e387550fdab836ed7e6dc881de23001b.",
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "ISBN 978-3-16-148410-0 and ISBN-10 0-306-40615-2 are both in stock.",
        "Use x[1::2] to take every second element, and std::vector for C++.",
        "for i in range(0, 100, 5): total += prices[i] * 1.19",
        "SELECT id, created_at FROM orders WHERE total > 1000 LIMIT 50;",
        "const timeout = 30_000; // 30 s before retrying",
        "The MAC address 00:1A:2B:3C:4D:5E belongs to the printer.",
        "Coordinates 48.8584, 2.2945 point at the Eiffel Tower.",
        "Population grew from 3,456,789 to 3,512,004 between 2010 and 2020.",
        "The temperature was 21.5 °C at 14:05:33 on 2024-06-01.",
        "Part number 4111-1111-1111-1112 is out of stock.",
        f"Reference {bad_cards[0]} is a customer number, not a card.",
        f"Account ref {bad_cards[1]} appears on the statement.",
        f"The old code {bad_iban(ibans[0])} fails validation.",
        f"Typo'd IBAN {bad_iban(ibans[3])} was rejected by the bank.",
        "SSN 000-12-3456 and 666-45-1234 are never issued.",
        "Example SSN 987-65-4321 is in the advertising range.",
        "Flight LH 2031 departs 06:45 from gate B12.",
        "Room 1204, floor 12, building 3 - badge 004-221.",
        "The patch is at https://example.com/releases/v4.2.0/notes.html",
        "Email template {{user.email}} is filled at send time.",
        "Install with pip install relay-core==0.1.0 and npm i @types/node@20.11.5.",
        "Version string 1.0.0-rc.1+build.5 follows semver.",
        "The ratio was 16:9 and the time 23:59:59.",
        "Phone extension 4417 forwards to reception.",
        "We sold 12 345 678 units in Q3 (up 4.5%).",
        "Dimensions: 120 x 80 x 45 cm, weight 12.5 kg.",
        "Lot 2023-11-07-004 expires 2026-11-06.",
        "Serial SN-8842-1190-3321 registered to the store.",
        "The Wi-Fi password is on the fridge, not in this chat.",
        "Bearer tokens are described in RFC 6750.",
        "task-management-system-v2 is the repo name.",
        "The function get_user_by_email_address_and_tenant was renamed.",
        "Patient weight 72 kg, BP 120/80, pulse 64.",
        "Score: 98.6 / 100 after 3 attempts.",
        "Account number 12345678, sort code 12-34-56.",
        "Use localhost:8000 or 127.0.0.1:8000? Docs say 0.0.0.0 binds all.",
        "Port range 49152-65535 is dynamic.",
        "The regex ^[a-z0-9._%+-]+@[a-z0-9.-]+$ is too loose.",
        "Call stack: main.py:42 -> handler.py:118 -> db.py:7",
        "Pi is 3.14159265358979, e is 2.71828182845904.",
        "The DOI is 10.1000/182 and arXiv:2403.01234.",
        "Meeting ID 845 2210 9934, passcode 771204.",
        "PO Box 1024, 75001 Paris.",
        "HTTP 429 after 60 requests per minute; retry after 12 s.",
        "Base64 of 'hello' is aGVsbG8=, harmless.",
        "Hash map load factor 0.75, capacity 1024.",
        "The lottery numbers were 4 8 15 16 23 42.",
        "Docker image sha256:9b2a3c4d5e6f is tagged 1.27.3.",
        "ISO week 2024-W03, day 2; quarter 2024-Q1.",
        "Call 911 in an emergency, or 112 in Europe.",
        "K8s node ip-10-0-1-23.ec2.internal is draining.",
        "Amount due: £2,350.00 by 31 Jan.",
        "const parseHttpResponseHeaders2024Compat = require('./compat');",
        "Rename MAX_RETRY_ATTEMPTS_BEFORE_FAILOVER_2 in config.py.",
        "See PROJ-1234 and PROJ-1235 on the board; sprint 24.3.",
        "Tel. Durchwahl -204, Zimmer 3.14.",
    ]
    return out + issue21_lines()


KEYS = Path(__file__).with_name("keys")


def pem(name: str) -> str:
    return (KEYS / name).read_text().strip()


def b64(n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(n))


def jwt(claims: str) -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"k1"}').decode().rstrip("=")
    body = base64.urlsafe_b64encode(claims.encode()).decode().rstrip("=")
    return f"{head}.{body}.{token('', 86, string.ascii_letters + string.digits + '-_')}"


def dashed(value: str) -> str:
    return "-".join(value[i : i + 4] for i in range(0, len(value), 4))


def issue21_lines() -> list[str]:
    """Issue 21's missed formats. The keys under ``keys/`` were made offline with
    ``openssl`` and ``ssh-keygen`` for this sample only (throwaway, never used)."""
    rsa = pem("rsa_pkcs8.pem")
    ec_params, _, ec_key = pem("ec_with_params.pem").partition("-----END EC PARAMETERS-----")
    ec_params += "-----END EC PARAMETERS-----"
    cut = "\n".join(pem("rsa_traditional.pem").splitlines()[:9])
    cut2 = "\n".join(pem("openssh_ecdsa").splitlines()[:4])
    escaped = pem("ec_pkcs8.pem").replace("\n", "\\n")
    indented = pem("x25519.pem").replace("\n", "\n    ")
    crlf = pem("ed25519_encrypted.pem").replace("\n", "\r\n")
    aws = [b64(39) + "/" for _ in range(3)] + [b64(40)]
    azure = b64(86) + "=="
    slack_app = f"xapp-1-A0{token('', 9, string.ascii_uppercase + string.digits)}-" + (
        f"{rng.randrange(10**12, 10**13)}-{token('', 64, '0123456789abcdef')}"
    )
    sendgrid = f"SG.{token('', 22, string.ascii_letters + string.digits + '-_')}." + token(
        "", 43, string.ascii_letters + string.digits + "-_"
    )
    pat = (
        "github_pat_11A"
        + token("", 21, string.ascii_uppercase + string.digits)
        + "_"
        + token("", 59)
    )
    dotted = [luhn_complete("4", 16), luhn_complete("51", 16)]
    amex = luhn_complete("34", 15)
    key_id = "AKIA" + token("", 16, string.ascii_uppercase + string.digits)
    return [
        f"ssh says 'bad permissions' for this key:\n{L('PRIVATE_KEY', rsa)}\nwhat now?",
        f"{L('PRIVATE_KEY', pem('rsa_traditional.pem'))}\n(that is id_rsa)",
        f"~/.ssh/id_ed25519:\n{L('PRIVATE_KEY', pem('openssh_ed25519'))}",
        f"```\n{L('PRIVATE_KEY', pem('openssh_encrypted'))}\n```",
        f"The EC key:\n{ec_params}\n{L('PRIVATE_KEY', ec_key.strip())}",
        f"Encrypted with AES-256:\n{L('PRIVATE_KEY', pem('rsa_encrypted.pem'))}\nPassphrase later.",
        f"{L('PRIVATE_KEY', pem('rsa_encrypted_traditional.pem'))}",
        f"Only half got pasted:\n{L('PRIVATE_KEY', cut)}\n\nIs that enough to recover it?",
        f"{L('PRIVATE_KEY', cut2)}",
        f'{{"type": "service_account", "private_key": "{L("PRIVATE_KEY", escaped)}\\n"}}',
        f"tls:\n  key: |\n    {L('PRIVATE_KEY', indented)}\n  port: 8443",
        f"Windows line endings:\r\n{L('PRIVATE_KEY', crlf)}\r\n",
        f"Our certificate (public, fine to share):\n{pem('certificate.pem')}",
        f"The verifier's public key:\n{pem('public.pem')}",
        f"Add this to authorized_keys: {pem('openssh_rsa.pub')}",
        "Generate one with `openssl genpkey -algorithm ed25519 -out key.pem`; "
        "the file starts with -----BEGIN PRIVATE KEY-----.",
        f"[prod]\naws_access_key_id = {L('API_KEY', key_id)}"
        f"\naws_secret_access_key = {L('API_KEY', aws[0])}",
        f"export AWS_SECRET_ACCESS_KEY={L('API_KEY', aws[1])}",
        f'"Credentials": {{"SecretAccessKey": "{L("API_KEY", aws[2])}", "SessionToken": "..."}}',
        f"Amazon S3 rejects the secret {L('API_KEY', aws[3])} with SignatureDoesNotMatch.",
        "Commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904 reverted the aws-cli bump.",
        f"s3 path data/{b64(12)}/{b64(27)} was not found.",
        f"AccountName=acmeprod;AccountKey={L('API_KEY', azure)};EndpointSuffix=core.windows.net",
        f"npm config set //registry.npmjs.org/:_authToken {L('API_KEY', token('npm_', 36))}",
        f"SENDGRID_API_KEY={L('API_KEY', sendgrid)}",
        "id_token: " + L("API_KEY", jwt('{"sub":"42","email_verified":true}')),
        f"export GITHUB_TOKEN={L('API_KEY', pat)}",
        f"Slack app token {L('API_KEY', slack_app)} for socket mode",
        f"Rufen Sie {L('PHONE', '0049 89 12345678')} oder {L('PHONE', '0041 44 668 18 00')} an.",
        f"From abroad dial {L('PHONE', '0044 161 496 0123')}.",
        f"Free support line: {L('PHONE', '1-800-555-0142')} (or {L('PHONE', '1 800 555 0178')}).",
        f"Joignable au {L('PHONE', '06 45 78 12 90')} ou au {L('PHONE', '07-61-23-45-89')}.",
        f"Llámeme al {L('PHONE', '915 555 123')} o al {L('PHONE', '691.234.567')}.",
        f"Centralita: {L('PHONE', '91 555 12 34')}",
        f"Card {L('CARD', '.'.join(dotted[0][i : i + 4] for i in range(0, 16, 4)))} on file.",
        f"Pago con {L('CARD', '.'.join(dotted[1][i : i + 4] for i in range(0, 16, 4)))}.",
        f"Amex {L('CARD', amex[:4] + '.' + amex[4:10] + '.' + amex[10:])} expired.",
        f"IBAN: {L('IBAN', dashed(ibans[0]))}",
        f"Virement sur {L('IBAN', dashed(ibans[3]))}.",
        f"Correo: {L('EMAIL', 'maría.lópez@correo.example.es')}",
        f"Kontakt {L('EMAIL', 'björn.größ@beispiel.example')} für Rückfragen.",
        f"GET /subscribe?email={L('EMAIL', 'jane.doe%2Btest%40example.com')}&list=7",
        f"mailto:{L('EMAIL', 'omar%2Bsales@example.org')}",
        "Population 1 800 000 in 2024; area 912 345 km2? no, 91 234 km2.",
        "Build 2024.06.12.3456 shipped; the next is 2024.07.01.",
        "Order 0049-2201-77 and room 0033 are unrelated.",
        "Dial 1-800-FLOWERS for the promo (letters, not digits).",
    ]


LABEL = re.compile(r"\[\[([A-Z_]+):(.*?)\]\]", re.DOTALL)


def parse(line: str) -> dict[str, object]:
    text, entities, position = "", [], 0
    for match in LABEL.finditer(line):
        text += line[position : match.start()]
        start = len(text)
        text += match.group(2)
        entities.append(
            {"type": match.group(1), "start": start, "end": len(text), "value": match.group(2)}
        )
        position = match.end()
    text += line[position:]
    return {"text": text, "entities": entities}


if __name__ == "__main__":
    target = Path(__file__).with_name("pii_sample.jsonl")
    rows = [parse(line) for line in lines()]
    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    labelled = sum(len(r["entities"]) for r in rows)  # type: ignore[arg-type]
    print(f"{len(rows)} lines, {labelled} labelled values -> {target}")
