"""Encryption at rest for secret values (Fernet, key derived from SECRET_KEY).

SECRETS_ENCRYPTION_KEY, when set, is used instead, so SECRET_KEY can rotate without
re-encrypting every stored secret.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from studio.env import env_str


@functools.cache
def _fernet() -> Fernet:
    material = env_str("SECRETS_ENCRYPTION_KEY") or settings.SECRET_KEY
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"agent-studio", info=b"secret-values"
    ).derive(material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("A stored secret cannot be decrypted with the current key.") from None
