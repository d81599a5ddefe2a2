"""`manage.py build_template`: build the E2B template from agent_runtime/ with the e2b SDK."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Build the E2B sandbox template (agent_runtime + Claude Agent SDK + Playwright)."

    def add_arguments(self, parser):
        parser.add_argument("--name", default=settings.E2B_TEMPLATE_ID)
        parser.add_argument("--cpu", type=int, default=2)
        parser.add_argument("--memory-mb", type=int, default=2048)
        parser.add_argument("--skip-cache", action="store_true")

    def handle(self, *args, name: str, cpu: int, memory_mb: int, skip_cache: bool, **options):
        from agent_runtime.e2b_template import TemplateBuildError, build_template

        if not settings.E2B_API_KEY:
            raise CommandError(
                "E2B_API_KEY is not set. Get a key at https://e2b.dev/dashboard and run: "
                "E2B_API_KEY=... python manage.py build_template"
            )
        self.stdout.write(f"Building E2B template {name!r} (this takes a few minutes)...")
        try:
            info = build_template(
                api_key=settings.E2B_API_KEY,
                name=name,
                cpu_count=cpu,
                memory_mb=memory_mb,
                skip_cache=skip_cache,
                on_log=lambda line: self.stdout.write(f"  {line}"),
            )
        except TemplateBuildError as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:  # the SDK's errors name the failing step; never the key
            raise CommandError(f"The template build failed: {type(exc).__name__}: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(f"Built template {info['name']} (id {info['template_id']}).")
            + f"\nSet E2B_TEMPLATE_ID={info['name']} for the studio."
        )
