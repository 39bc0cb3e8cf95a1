import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import key_id, public_key_text


class Command(BaseCommand):
    help = ("Write a new Ed25519 private key for signing audit checkpoints to PATH (PEM, readable by its owner "
            "only) and print its public key, for AUDIT_CHECKPOINT_PUBLIC_KEYS.")

    def add_arguments(self, parser):
        parser.add_argument("path", help="where to write the private key (AUDIT_CHECKPOINT_KEY_FILE)")
        parser.add_argument("--force", action="store_true", help="replace an existing file")

    def handle(self, path, force, **options):
        target = Path(path)
        if target.exists() and not force:
            raise CommandError(f"{target} exists; a key in use is not replaced without --force")
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        target.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        descriptor = os.open(target, flags, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        os.chmod(target, 0o600)
        public = key.public_key()
        self.stderr.write(f"private key written to {target} (key id {key_id(public)}); the public key:")
        self.stdout.write(public_key_text(public))
