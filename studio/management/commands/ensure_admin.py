"""Create the first operator account for a new install, once, and say how to sign in."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an `admin` superuser with a generated password if no superuser exists."

    def handle(self, *args, **options):
        User = get_user_model()
        password_file = settings.DATA_DIR / "admin-password.txt"
        if User.objects.filter(is_superuser=True).exists():
            if password_file.exists():
                self.stdout.write(f"Sign in as admin with the password in {password_file}")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        self.stdout.write(
            self.style.SUCCESS(f"Created the operator account: admin / {password}")
            + f"\n(the password is also in {password_file})"
        )
