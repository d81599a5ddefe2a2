from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Model gateway and metering"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from gateway.pricing import price_table

        price_table()  # a malformed MODEL_PRICES stops the studio at startup, naming the entry
