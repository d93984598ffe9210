import importlib

from django.apps import apps
from django.test import TestCase

from conversations.models import Caller
from conversations.names import search_key

migration = importlib.import_module("conversations.migrations.0005_caller_name_search")


class CallerSearchKeyTestCase(TestCase):
    def test_it_folds_case_and_accents(self) -> None:
        self.assertEqual(search_key("Chloé ZOË Ñandú Straße"), "chloe zoe nandu strasse")

    def test_save_keeps_the_folded_name(self) -> None:
        caller = Caller.objects.create(phone_number="+14155552222", name="Chloé")
        caller.name = "Zoë"
        caller.save(update_fields=["name"])

        self.assertEqual(Caller.objects.values_list("name_search", flat=True).get(), "zoe")

    def test_the_migration_folds_the_names_of_callers_already_there(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Chloé")
        Caller.objects.create(phone_number="+14155553333", name="RENÉE")
        Caller.objects.update(name_search="")

        migration.fold_names(apps, None)

        self.assertEqual(sorted(Caller.objects.values_list("name_search", flat=True)), ["chloe", "renee"])
