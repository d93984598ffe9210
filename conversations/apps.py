from django.apps import AppConfig
from django.conf import settings


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "SMS conversations"

    def ready(self) -> None:
        from conversations import checks  # noqa: F401  (registers the system checks)

        # Here rather than in settings: once Django is set up, in every process that loads
        # the app (web server, worker, commands), before the first request or task.
        if settings.SENTRY_DSN:
            from conversations.error_reports import init_sentry

            init_sentry(settings.SENTRY_DSN)
