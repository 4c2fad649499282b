"""DKIM for an organization's sender: its per-organization RSA key, the DNS
records to publish (SPF, DKIM, DMARC) and the signature on each message
(dkimpy).

The private key is stored encrypted (Fernet, keyed from the server's
SECRET_KEY and its fallbacks, so a key rotation with SECRET_KEY_FALLBACKS keeps
old keys readable) and is never shown; the public part is published in DNS.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache

import dkim
import dkim.crypto
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from django.conf import settings

KEY_BITS = 2048
# Signed when present: what a receiver shows or acts on (RFC 6376 5.4.1), the
# one-click unsubscribe headers included so they cannot be added on the way.
SIGNED_HEADERS = (
    b"from", b"reply-to", b"to", b"subject", b"date", b"message-id", b"mime-version",
    b"content-type", b"list-unsubscribe", b"list-unsubscribe-post",
)  # fmt: skip


# dkimpy canonicalizes, hashes and writes the DKIM-Signature header; its RSA
# step is pure Python (13 ms per message with a 2048-bit key, more than the
# rest of a send). The same PKCS#1 v1.5 signature from OpenSSL (cryptography)
# takes about 1 ms, so dkimpy's sign step is pointed at it (its verify is left
# as it is; the tests verify our signatures with it).
_PREHASHED = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}
_pure_rsa_sign = dkim.crypto.RSASSA_PKCS1_v1_5_sign


@lru_cache(maxsize=256)
def _openssl_key(numbers: tuple[int, ...]) -> rsa.RSAPrivateKey:
    n, e, d, p, q, dmp1, dmq1, iqmp = numbers
    private = rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n))
    return private.private_key(unsafe_skip_rsa_key_validation=True)


def _rsa_sign(hash, private_key):
    algorithm = _PREHASHED.get(hash.name.lower())
    if algorithm is None:
        return _pure_rsa_sign(hash, private_key)
    names = ("modulus", "publicExponent", "privateExponent", "prime1", "prime2")
    names += ("exponent1", "exponent2", "coefficient")
    key = _openssl_key(tuple(private_key[name] for name in names))
    return key.sign(hash.digest(), padding.PKCS1v15(), Prehashed(algorithm))


dkim.RSASSA_PKCS1_v1_5_sign = _rsa_sign


@dataclass(frozen=True)
class KeyPair:
    selector: str
    public_key: str  # base64 of the DER SubjectPublicKeyInfo: the DNS record's p=
    private_key: str  # encrypted PEM (what the model stores)


@dataclass(frozen=True)
class DnsRecord:
    purpose: str  # SPF / DKIM / DMARC
    type: str
    name: str
    value: str
    note: str = ""


def _fernet() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    keys = [
        Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"leadflow.dkim:{s}".encode()).digest()))
        for s in secrets
    ]
    return MultiFernet(keys)


def generate_key(*, selector: str, bits: int = KEY_BITS) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(
        selector=selector,
        public_key=base64.b64encode(der).decode(),
        private_key=_fernet().encrypt(pem).decode(),
    )


@lru_cache(maxsize=256)
def _private_pem(encrypted: str) -> bytes:
    # Decrypted once per worker process and key (a send batch signs many messages).
    return _fernet().decrypt(encrypted.encode())


class DkimKeyUnreadable(Exception):
    """The stored key cannot be decrypted (the server's secret key changed
    without a fallback): a new key must be generated and published."""


def private_pem(encrypted: str) -> bytes:
    try:
        return _private_pem(encrypted)
    except InvalidToken as exc:
        raise DkimKeyUnreadable(
            "The DKIM key cannot be read with this server's secret key; generate a new one."
        ) from exc


def domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].lower()


def dkim_record_value(public_key: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_key}"


def sign(data: bytes, *, selector: str, domain: str, encrypted_key: str) -> bytes:
    """The message with its DKIM-Signature header in front (relaxed/relaxed,
    rsa-sha256). data: the whole message, CRLF line ends."""
    present = {line.split(b":", 1)[0].strip().lower() for line in _head(data)}
    headers = [h for h in SIGNED_HEADERS if h in present]
    signature = dkim.sign(
        data,
        selector.encode(),
        domain.encode("idna"),
        private_pem(encrypted_key),
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=headers,
    )
    return signature + data


def _head(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if line and line[:1] not in b" \t"]


def dns_records(*, from_email: str, selector: str, public_key: str) -> list[DnsRecord]:
    """What to add to the from-address domain's DNS, in the words of a DNS panel."""
    domain = domain_of(from_email)
    if not domain:
        return []
    records = [
        DnsRecord(
            "SPF",
            "TXT",
            domain,
            f"v=spf1 include:{settings.SENDER_SPF_INCLUDE} ~all",
            "Only one SPF record per domain: if one exists, add the include: part to it.",
        )
    ]
    if selector and public_key:
        records.append(
            DnsRecord(
                "DKIM",
                "TXT",
                f"{selector}._domainkey.{domain}",
                dkim_record_value(public_key),
                "Some DNS panels want a value this long split into quoted strings of at "
                "most 255 characters; paste it whole if yours splits it itself.",
            )
        )
    records.append(
        DnsRecord(
            "DMARC",
            "TXT",
            f"_dmarc.{domain}",
            f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}; adkim=r; aspf=r",
            "Start with p=none to receive reports; move to p=quarantine once SPF and DKIM pass.",
        )
    )
    return records
