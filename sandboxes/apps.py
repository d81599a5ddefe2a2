from django.apps import AppConfig


class SandboxesConfig(AppConfig):
    name = "sandboxes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from celery.signals import worker_ready

        worker_ready.connect(_reconcile_on_start, weak=False, dispatch_uid="sandboxes-reconcile")


def _reconcile_on_start(sender=None, **kwargs):
    # A restarted studio finds its sandboxes again, or cleans up what nothing owns.
    from sandboxes.tasks import sandboxes_reconcile

    sandboxes_reconcile.delay()
