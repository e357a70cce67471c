"""Each detector on what it must find and on the look-alikes it must leave alone."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_core.secrets import has_known_key_shape
from relay_redact import DETECTORS, ENTITIES, find_pii
from relay_redact._detectors import iban_ok, luhn_ok, steuer_id_ok


def found(text: str, *entities: str) -> list[tuple[str, str]]:
    return [(f.entity, f.value) for f in find_pii(text, entities or ENTITIES)]


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("write to jane.doe+x@mail.example.co.uk!", "EMAIL", "jane.doe+x@mail.example.co.uk"),
        ("call +44 20 7946 0958 today", "PHONE", "+44 20 7946 0958"),
        ("call (415) 555-0132 today", "PHONE", "(415) 555-0132"),
        ("call 415.555.0132 today", "PHONE", "415.555.0132"),
        ("appelle le 06 12 34 56 78", "PHONE", "06 12 34 56 78"),
        ("ring 020 7946 0958.", "PHONE", "020 7946 0958"),
        ("card 4111 1111 1111 1111 exp 09/27", "CARD", "4111 1111 1111 1111"),
        ("amex 3782 822463 10005", "CARD", "3782 822463 10005"),
        ("mc 5555-5555-5555-4444", "CARD", "5555-5555-5555-4444"),
        ("IBAN DE89 3704 0044 0532 0130 00 TO PAY", "IBAN", "DE89 3704 0044 0532 0130 00"),
        ("iban gb82west12345698765432.", "IBAN", "gb82west12345698765432"),
        ("ssn 123-45-6789", "NATIONAL_ID", "123-45-6789"),
        ("NI AB 12 34 56 C", "NATIONAL_ID", "AB 12 34 56 C"),
        ("NIR 1 84 12 76 451 089 46", "NATIONAL_ID", "1 84 12 76 451 089 46"),
        ("Corse 2 91 03 2A 004 112 79", "NATIONAL_ID", "2 91 03 2A 004 112 79"),
        ("IdNr 86095742719", "NATIONAL_ID", "86095742719"),
        ("from 203.0.113.45:443", "IP", "203.0.113.45"),
        ("from 2001:db8::8a2e:370:7334", "IP", "2001:db8::8a2e:370:7334"),
        ("key sk-proj-abcdefghijklmnop1234", "API_KEY", "sk-proj-abcdefghijklmnop1234"),
        ("AWS AKIAIOSFODNN7EXAMPLE", "API_KEY", "AKIAIOSFODNN7EXAMPLE"),
        ("TOKEN=a8Fk29dLqP0xZ7mN3vB6cT1yR4wE", "API_KEY", "a8Fk29dLqP0xZ7mN3vB6cT1yR4wE"),
        ("Authorization: Bearer abcDEF123456ghiJKL7890", "API_KEY", "abcDEF123456ghiJKL7890"),
    ],
)
def test_each_entity_is_found_with_its_exact_span(text: str, entity: str, value: str) -> None:
    assert found(text) == [(entity, value)]


@pytest.mark.parametrize(
    "text",
    [
        "meeting on 2024-01-15 at 10:30:45, or 15/01/2024, or 01.02.2024",
        "order ORD-2024-000123, #123456789, total $1,299.99",
        "Python 3.12.1, Windows 10.0.19041.1415, version 1.2.3.4, v2.0.0.1",
        "id 550e8400-e29b-41d4-a716-446655440000, commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "ISBN 978-3-16-148410-0 and 0-306-40615-2",
        "tracking 1Z999AA10123456784 and 9400 1000 0000 0000 0000 00",
        "x[1::2] and std::vector<int> and a::b::c",
        "MAC 00:1A:2B:3C:4D:5E, ratio 16:9, netmask 255.255.255.0",
        "bind 0.0.0.0 or 127.0.0.1 or ::1",
        "card-like 4111 1111 1111 1112 fails Luhn",
        "IBAN with a typo DE90 3704 0044 0532 0130 00",
        "never issued: 000-12-3456, 666-45-1234, 987-65-4321, 123-00-4567",
        "NINO prefixes GB 12 34 56 A and QQ 12 34 56 C are not issued",
        "npm i @types/node@20.11.5; pip install relay-core==0.1.0",
        "const parseHttpResponseHeaders2024Compat = 1",
        "task-management-system-v2 and interleaved-thinking-2025-05-14",
        "Bearer tokens are described in RFC 6750",
    ],
)
def test_ordinary_text_has_nothing_to_redact(text: str) -> None:
    assert found(text) == []


def test_only_the_chosen_entities_are_looked_for() -> None:
    text = "jane@example.org, 4111111111111111, 10.0.0.1"
    assert found(text, "CARD") == [("CARD", "4111111111111111")]
    assert found(text, "EMAIL", "IP") == [("EMAIL", "jane@example.org"), ("IP", "10.0.0.1")]


def test_overlaps_resolve_to_the_longest_then_the_most_specific() -> None:
    # A Maltese IBAN is also a 31-character opaque token: same span, IBAN is more specific.
    assert found("MT84MALT011000012345MTLCAST001S") == [("IBAN", "MT84MALT011000012345MTLCAST001S")]
    # "+1 (415) 555-0132": the international form covers the NANP one; one finding.
    assert found("+1 (415) 555-0132") == [("PHONE", "+1 (415) 555-0132")]
    # An e-mail's local part never becomes a key on its own.
    assert found("a8Fk29dLqP0xZ7mN3vB6cT1yR4wE@example.com") == [
        ("EMAIL", "a8Fk29dLqP0xZ7mN3vB6cT1yR4wE@example.com")
    ]


def test_a_detector_of_ones_own_joins_the_built_in_ones() -> None:
    import re

    from relay_redact import Detector

    ticket = Detector(
        name="ticket",
        entity="TICKET",
        pattern=re.compile(r"\bTCK-\d{6}\b"),
        accept=lambda text, start, end: end,
        description="an internal ticket number",
    )
    text = "TCK-123456 was filed by ann@example.com"
    found = find_pii(text, entities=(*ENTITIES, "TICKET"), detectors=(*DETECTORS, ticket))
    assert [(f.entity, f.value) for f in found] == [
        ("TICKET", "TCK-123456"),
        ("EMAIL", "ann@example.com"),
    ]


def test_findings_are_ordered_and_never_overlap() -> None:
    text = "a@b.io 4111111111111111 a@b.io 10.0.0.1 DE89370400440532013000"
    findings = find_pii(text)
    assert [f.start for f in findings] == sorted(f.start for f in findings)
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))
    assert all(text[f.start : f.end] == f.value for f in findings)


@pytest.mark.parametrize(
    "key",
    [
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
        "sk-or-v1-abcdefghijklmnop1234",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "gsk_abcdefghijklmnopqrstuv123456",
        "xai-abcdefghijklmnopqrstuv123456",
    ],
)
def test_every_key_shape_relay_core_knows_is_redacted(key: str) -> None:
    assert has_known_key_shape(key)
    assert found(f"my key is {key}, thanks") == [("API_KEY", key)]


def test_the_checksums_follow_their_standards() -> None:
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")
    assert iban_ok("GB82WEST12345698765432")
    assert not iban_ok("GB82WEST12345698765433")
    assert steuer_id_ok("86095742719")
    assert not steuer_id_ok("86095742718")
    assert not steuer_id_ok("11111111111")  # a digit may repeat only once


def test_every_detector_is_named_documented_and_typed() -> None:
    names = [d.name for d in DETECTORS]
    assert len(names) == len(set(names))
    assert {d.entity for d in DETECTORS} == set(ENTITIES)
    assert all(d.description for d in DETECTORS)


# Text made of what the detectors look for: digits, separators, key characters, '@'.
_SHAPES = st.text(alphabet=st.sampled_from("0123456789abcxyzABEJKXYZ_-+.:@/= \n()éey"), max_size=80)
_DATA = Path(__file__).parent / "data"


@settings(max_examples=500, deadline=None)
@given(
    _SHAPES
    | st.sampled_from(
        ["xoxb-1234567890", "eyJhbGciOi.eyJzdWIiOi.abcdefghij", "-----BEGIN PRIVATE KEY-----\nAb=="]
    )
)
def test_the_quick_look_never_hides_a_finding(text: str) -> None:
    # find_pii skips the detectors for text with nothing any of them could accept; run
    # them all on the same text (a copy of the list turns the shortcut off).
    assert find_pii(text) == find_pii(text, detectors=tuple(DETECTORS))


@pytest.mark.parametrize("sample", ["pii_sample.jsonl", "pii_heldout.jsonl"])
def test_the_quick_look_never_hides_a_finding_in_the_sample(sample: str) -> None:
    for line in (_DATA / sample).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for text in (row["text"], *(entity["value"] for entity in row["entities"])):
            assert find_pii(text) == find_pii(text, detectors=tuple(DETECTORS)), text


def test_ordinary_prose_runs_no_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every request is scanned: fifteen regular expressions over each text cost more
    # than the quick look that tells most prose has nothing for any of them.
    from relay_redact._detectors import Detector

    ran: list[str] = []
    find = Detector.find

    def counted(self: Detector, text: str) -> Any:
        ran.append(self.name)
        return find(self, text)

    monkeypatch.setattr(Detector, "find", counted)
    assert find_pii("Hello, could you summarise this paragraph for me?") == []
    assert ran == []
    assert find_pii("mail jane@example.org") != []
    assert len(ran) == len(DETECTORS)


# ------------------------------------------------------------------ issue 21: keys and misses

_KEYS = Path(__file__).parent / "data" / "keys"
_PUBLIC = ("certificate.pem", "public.pem", "openssh_rsa.pub")
_PRIVATE = sorted(p for p in _KEYS.iterdir() if p.name not in _PUBLIC)


@pytest.mark.parametrize("path", _PRIVATE, ids=lambda p: p.name)
def test_a_private_key_is_found_whole_and_nothing_of_it_is_left(path: Path) -> None:
    # Keys made offline with openssl / ssh-keygen: RSA, EC (with its parameters block),
    # OpenSSH, PKCS#8, encrypted PKCS#8 and traditional. Before issue 21 each base64 line
    # was judged alone and 17 of a key's 26 lines went through.
    key = path.read_text().strip()
    key = key[key.index("-----BEGIN", key.index("PARAMETERS-----") if "PARAMETERS" in key else 0) :]
    text = f"Why is this rejected?\n{key}\nThanks"
    assert found(text) == [("PRIVATE_KEY", key)]


@pytest.mark.parametrize(
    ("shape", "transform"),
    [
        ("crlf", lambda k: k.replace("\n", "\r\n")),
        ("json", lambda k: k.replace("\n", "\\n")),
        ("indented", lambda k: k.replace("\n", "\n    ")),
    ],
)
def test_a_private_key_is_found_whatever_its_line_breaks(shape: str, transform: Any) -> None:
    key = transform((_KEYS / "rsa_pkcs8.pem").read_text().strip())
    assert found(f'"private_key": "{key}"') == [("PRIVATE_KEY", key)]


def test_a_key_without_its_end_line_is_taken_to_the_end_of_its_base64() -> None:
    lines = (_KEYS / "rsa_traditional.pem").read_text().splitlines()
    cut = "\n".join(lines[:12])
    assert found(f"{cut}\n\nThe rest got lost, can you help?") == [("PRIVATE_KEY", cut)]
    escaped = "\\n".join(lines[:6])
    assert found(f'{{"key": "{escaped}\\n') == [("PRIVATE_KEY", escaped)]


@pytest.mark.parametrize(
    "text",
    [
        (_KEYS / "certificate.pem").read_text(),
        (_KEYS / "public.pem").read_text(),
        (_KEYS / "openssh_rsa.pub").read_text(),
        "A PKCS#8 file starts with -----BEGIN PRIVATE KEY----- and ends with its END line.",
        "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
        "aws: commit 9fceb02d0ae598e95dc970b74767f19372d61af8 bumped the SDK",
        "the s3 key photos/2024/06/IMG_20240612_101502_HDR_final_v2.jpg",
        "Order 0049-2201-77, population 1 800 000, build 2024.06.12.3456",
        "Dial 1-800-FLOWERS; ticket #912345678",
    ],
    ids=[
        "certificate",
        "public key",
        "ssh public key",
        "prose",
        "template",
        "sha",
        "s3 path",
        "numbers",
        "words",
    ],
)
def test_public_material_and_look_alikes_are_left_alone(text: str) -> None:
    assert found(text) == []


_B64 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example secret
_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
_SG = "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"


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        (f"aws_secret_access_key = {_B64}", "API_KEY", _B64),
        (f"export AWS_SECRET_ACCESS_KEY={_B64}", "API_KEY", _B64),
        (f'{{"SecretAccessKey": "{_B64}"}}', "API_KEY", _B64),
        ("//registry.npmjs.org/:_authToken=npm_AbCdEf0123456789AbCdEf0123456789AbCd", "API_KEY",
         "npm_AbCdEf0123456789AbCdEf0123456789AbCd"),
        (f"SENDGRID_API_KEY={_SG}", "API_KEY", _SG),
        ("AccountName=acme;AccountKey=" + "Ab1+" * 22 + "==;EndpointSuffix=core.windows.net",
         "API_KEY", "Ab1+" * 22 + "=="),
        (f"Bearer {_JWT}", "API_KEY", _JWT),
        ("GH_TOKEN=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF0123456789abcdefgh",
         "API_KEY",
         "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF0123456789abcdefgh"),
        ("xapp-1-A0123ABCDEF-1234567890123-0123456789abcdef0123456789abcdef", "API_KEY",
         "xapp-1-A0123ABCDEF-1234567890123-0123456789abcdef0123456789abcdef"),
        ("xoxp-12345678901-12345678901-1234567890123-0123456789abcdef", "API_KEY",
         "xoxp-12345678901-12345678901-1234567890123-0123456789abcdef"),
        ("ruf an: 0049 30 12345678", "PHONE", "0049 30 12345678"),
        ("toll-free 1-800-555-0199.", "PHONE", "1-800-555-0199"),
        ("or 1 (888) 555-0123", "PHONE", "1 (888) 555-0123"),
        ("portable 07-61-23-45-89", "PHONE", "07-61-23-45-89"),
        ("llame al 912 345 678", "PHONE", "912 345 678"),
        ("oficina 91 234 56 78.", "PHONE", "91 234 56 78"),
        ("card 4111.1111.1111.1111 exp", "CARD", "4111.1111.1111.1111"),
        ("IBAN DE89-3704-0044-0532-0130-00.", "IBAN", "DE89-3704-0044-0532-0130-00"),
        ("écrire à josé.garcía@example.com", "EMAIL", "josé.garcía@example.com"),
        ("?email=jane.doe%2Bnews%40example.org&x=1", "EMAIL", "jane.doe%2Bnews%40example.org"),
    ],
)  # fmt: skip
def test_the_formats_issue_21_found_missing_are_found(text: str, entity: str, value: str) -> None:
    assert found(text) == [(entity, value)]
