"""Wrote ``pii_heldout.jsonl`` once: the HELD-OUT labelled sample, written before the
detectors for issue 21's missed formats (private keys, AWS secrets, npm, SendGrid, Azure,
Slack app tokens, 0049 phones, 1-800, French and Spanish national numbers, dotted cards,
dashed IBANs, unicode and URL-encoded e-mail) were tuned, and never changed after.

Do not re-run it to "fix" a line: the file is frozen so that its numbers stay an honest
estimate of how the detectors do on text they were not fitted to. The private keys are
generated here, offline, by ``openssl`` and ``ssh-keygen`` (throwaway keys, never used
anywhere); every other value is synthetic, tokens are random strings of the right shape.
Labels use ``make_pii_sample``'s inline form, ``[[TYPE:value]]``.
"""

from __future__ import annotations

import base64
import json
import random
import string
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_pii_sample import iban, parse

rng = random.Random(21_2)
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"


def rand(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def luhn(prefix: str, length: int) -> str:
    body = prefix + rand(string.digits, length - len(prefix) - 1)
    for check in string.digits:
        digits = [int(c) for c in body + check][::-1]
        total = sum(d if i % 2 == 0 else sum(divmod(2 * d, 10)) for i, d in enumerate(digits))
        if total % 10 == 0:
            return body + check
    raise AssertionError


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(payload: dict[str, object]) -> str:
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(payload).encode())
    return f"{head}.{body}.{b64url(rng.randbytes(32))}"


def keys() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)

        def run(*args: str) -> None:
            subprocess.run(args, check=True, capture_output=True, cwd=d)

        run("openssl", "genrsa", "-out", "rsa.pem", "2048")
        run("openssl", "rsa", "-in", "rsa.pem", "-traditional", "-out", "rsa_trad.pem")
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci@build", "-f", "ed")
        run("openssl", "ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "ec.pem")
        run("openssl", "genpkey", "-algorithm", "ed25519", "-out", "p8.pem")
        run("openssl", "genrsa", "-aes256", "-passout", "pass:x", "-out", "enc.pem", "2048")
        run("openssl", "rsa", "-in", "rsa.pem", "-aes256", "-passout", "pass:x",
            "-traditional", "-out", "enc_trad.pem")  # fmt: skip
        run("openssl", "req", "-x509", "-key", "p8.pem", "-subj", "/CN=ho.example",
            "-days", "1", "-out", "cert.pem")  # fmt: skip
        run("openssl", "pkey", "-in", "p8.pem", "-pubout", "-out", "pub.pem")
        return {p.name: p.read_text().strip() for p in d.iterdir()}


def lines() -> list[str]:
    k = keys()
    rsa, trad, ed, ec = k["rsa.pem"], k["rsa_trad.pem"], k["ed"], k["ec.pem"]
    p8, enc, enc_trad = k["p8.pem"], k["enc.pem"], k["enc_trad.pem"]
    truncated = "\n".join(rsa.splitlines()[:12])
    json_key = p8.replace("\n", "\\n")
    aws = [rand(B64, 40) for _ in range(4)]
    azure = rand(B64, 86) + "=="
    pat = "github_pat_11" + rand(string.ascii_uppercase + string.digits, 20) + "_" + rand(ALNUM, 59)
    slack_b = f"xoxb-{rand(string.digits, 11)}-{rand(string.digits, 13)}-{rand(ALNUM, 24)}"
    slack_p = f"xoxp-{rand(string.digits, 11)}-{rand(string.digits, 11)}-{rand(string.digits, 13)}-{rand('0123456789abcdef', 32)}"  # noqa: E501
    slack_a = f"xapp-1-A{rand(string.ascii_uppercase + string.digits, 10)}-{rand(string.digits, 13)}-{rand('0123456789abcdef', 64)}"  # noqa: E501
    npm = "npm_" + rand(ALNUM, 36)
    sendgrid = f"SG.{rand(ALNUM + '-_', 22)}.{rand(ALNUM + '-_', 43)}"
    token_a = jwt({"sub": "1234567890", "name": "Ana Ruiz", "iat": 1716239022})
    token_b = jwt({"sub": "svc-42", "scope": "read write", "exp": 1893456000})
    card_dots = luhn("4", 16)
    card_dots2 = luhn("53", 16)
    amex = luhn("37", 15)
    de = iban("DE", "370400440532013000")
    fr = iban("FR", "30006000011234567890189")
    es = iban("ES", "21000418450200051332")

    def dashed(v: str) -> str:
        return "-".join(v[i : i + 4] for i in range(0, len(v), 4))

    def dotted(v: str) -> str:
        return ".".join(v[i : i + 4] for i in range(0, len(v), 4))

    return [
        # private keys, whole
        f"Here is my key, why does ssh refuse it?\n[[PRIVATE_KEY:{rsa}]]\nThanks!",
        f"deploy.pem:\n[[PRIVATE_KEY:{trad}]]",
        f"```\n[[PRIVATE_KEY:{ed}]]\n```\nIt says 'invalid format'.",
        f"EC key for the signer:\n[[PRIVATE_KEY:{ec}]]\n",
        f"cat /etc/ssl/private/api.key\n[[PRIVATE_KEY:{p8}]]\n$ ",
        f"Encrypted (pass is in the vault):\n[[PRIVATE_KEY:{enc}]]",
        f"Old style encrypted key:\n[[PRIVATE_KEY:{enc_trad}]]\nopenssl asks for a pass phrase.",
        f"The paste got cut off:\n[[PRIVATE_KEY:{truncated}]]\n\n"
        "Can you tell what kind of key it is?",
        f'{{"type": "service_account", "private_key": "[[PRIVATE_KEY:{json_key}]]", '
        '"client_email": "[[EMAIL:builder@proj-1.iam.example.com]]"}',
        # public material: not secret
        f"Our server certificate, for pinning:\n{k['cert.pem']}",
        f"Public key to put in the verifier config:\n{k['pub.pem']}",
        # cloud and SaaS tokens
        f"[default]\naws_access_key_id = AKIA{rand(string.ascii_uppercase + string.digits, 16)}\n"
        f"aws_secret_access_key = [[API_KEY:{aws[0]}]]\nregion = eu-west-1",
        f"export AWS_SECRET_ACCESS_KEY=[[API_KEY:{aws[1]}]]",
        f'{{"AccessKeyId": "ASIA{rand(string.ascii_uppercase + string.digits, 16)}", '
        f'"SecretAccessKey": "[[API_KEY:{aws[2]}]]", "Expiration": "2025-01-01T00:00:00Z"}}',
        f"The boto3 client fails with aws secret key [[API_KEY:{aws[3]}]] in eu-central-1.",
        "git log shows commit 9fceb02d0ae598e95dc970b74767f19372d61af8 touched the aws module.",
        f"DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey=[[API_KEY:{azure}]];"
        "EndpointSuffix=core.windows.net",
        f"GH_TOKEN=[[API_KEY:{pat}]] gh release create v1.2.0",
        f"Slack bot token [[API_KEY:{slack_b}]] stopped working after the reinstall.",
        f"SLACK_USER_TOKEN='[[API_KEY:{slack_p}]]'",
        f"Socket mode needs the app-level token: [[API_KEY:{slack_a}]]",
        f"//registry.npmjs.org/:_authToken=[[API_KEY:{npm}]]",
        f"sendgrid.api_key = '[[API_KEY:{sendgrid}]]'",
        f"curl -H 'Authorization: Bearer [[API_KEY:{token_a}]]' https://api.example.com/me",
        f"The cookie session=[[API_KEY:{token_b}]] expires too soon.",
        # phones
        "Bitte rufen Sie uns an: [[PHONE:0049 30 12345678]] (Zentrale).",
        "Our UK desk: [[PHONE:0044 20 7946 0958]], Paris: [[PHONE:0033 1 40 20 50 50]].",
        "Handy: [[PHONE:0049 151 23456789]]",
        "Toll-free: [[PHONE:1-800-555-0199]], or [[PHONE:1 (888) 555-0123]] from Canada.",
        "Call us at [[PHONE:1.877.555.0134]] any time.",
        "Mon portable : [[PHONE:06 12 34 56 78]], le fixe [[PHONE:01 42 68 53 00]].",
        "Rappelez-moi au [[PHONE:07.98.76.54.32]] svp.",
        "Mi teléfono es el [[PHONE:912 345 678]] y el móvil [[PHONE:612 345 678]].",
        "Oficina de Barcelona: [[PHONE:93 456 78 90]].",
        # cards and IBANs
        f"Card: [[CARD:{dotted(card_dots)}]] exp 04/27",
        f"Charged [[CARD:{dotted(card_dots2)}]] twice, please refund one.",
        f"Amex [[CARD:{amex[:4]}.{amex[4:10]}.{amex[10:]}]] was declined.",
        f"Überweisen Sie auf [[IBAN:{dashed(de)}]].",
        f"RIB : [[IBAN:{dashed(fr)}]]",
        f"Cuenta [[IBAN:{es}]] (titular: Ana Ruiz).",
        # e-mail
        "Escríbale a [[EMAIL:josé.garcía@example.com]] antes del lunes.",
        "Kontakt: [[EMAIL:jürgen.müller@beispiel.de]]",
        "Forwarded from [[EMAIL:δοκιμή@example.gr]] by the gateway.",
        "Unsubscribe link: https://mail.example.com/u?e=[[EMAIL:jane.doe%2Bnews@example.org]]&t=9",
        "Webhook body: email=[[EMAIL:omar.k%40example.net]]&plan=pro",
        "Reply to [[EMAIL:o'brien@example.ie]] with the invoice.",
        # the old formats, fresh values
        "Reach me at [[EMAIL:li.wei@corp.example.com]] or [[PHONE:+44 7700 900457]].",
        f"Visa [[CARD:{luhn('4', 16)}]] and IBAN [[IBAN:{iban('NL', 'ABNA0417164300')}]].",
        "Login from [[IP:198.51.100.23]] and [[IP:2001:db8:ab::17]] flagged.",
        "SSN [[NATIONAL_ID:219-09-9999]] on the W-2.",
        # negatives: things that look close
        "Population of the metro area: 1 800 000; founded 1612.",
        "Release 1.800.555 is out; see build 2024.06.12.",
        "Invoice 2024-0612-3456 for 1,800.00 EUR, due 06/12/2024.",
        "Ticket #912345678 was merged into #912345679.",
        "Version 4.11.1111 of the SDK fixes the dotted-path bug.",
        "The hash is sha1:2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 for the aws lambda zip.",
        "user@localhost cannot log in, and root@raspberrypi neither.",
        "Use the placeholder YOUR_AWS_SECRET_ACCESS_KEY_HERE in the template.",
        "Set SENDGRID_API_KEY and NPM_TOKEN in the CI settings, never in the repo.",
        "The parcel weighs 912 g and measures 34 x 56 x 78 cm.",
        "Run `openssl genrsa -out key.pem 2048`, then `chmod 600 key.pem`.",
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nRelease notes for 3.2.",
        "Gateway timeout at 06:12:34; retried 5 times; DE-2024-0042 closed.",
        "Meeting room 0049, floor 3; extension 204.",
    ]


if __name__ == "__main__":
    target = Path(__file__).with_name("pii_heldout.jsonl")
    if target.exists() and "--force" not in sys.argv:
        raise SystemExit(f"{target} is frozen: the held-out sample is never rewritten")
    rows = [parse(line) for line in lines()]
    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    labelled = sum(len(r["entities"]) for r in rows)  # type: ignore[arg-type]
    print(f"{len(rows)} lines, {labelled} labelled values -> {target}")
