"""What a locked-out sign-in sees (django-axes calls this; see AXES_* in studio/settings.py)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render


def locked_out(request, original_response=None, credentials=None):
    """The sign-in page again, with a message saying why and for how long, as a 429.

    The same answer whether or not the password was right this time, so a locked-out
    guesser learns nothing more.
    """
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = (
        f"Too many failed sign-ins for this username from your address: sign-in is locked "
        f"for {minutes} minutes. An operator can lift the lock in admin (Axes → access attempts)."
    )
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "locked_out": message, "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)
