from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "SMS conversations"

    def ready(self) -> None:
        from conversations import checks  # noqa: F401  (registers the system checks)
