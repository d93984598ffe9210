import csv
import io

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from conversations.models import Caller

IMPORT_URL = "/admin/conversations/caller/import/"


def csv_file(text: str, encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile("callers.csv", text.encode(encoding), content_type="text/csv")


class CallerCsvTestCase(TestCase):
    def setUp(self) -> None:
        self.client.force_login(User.objects.create(username="staff", is_staff=True, is_superuser=True))

    def test_it_imports_and_normalizes_each_number(self) -> None:
        upload = csv_file(
            "phone_number,name,blocked\n(415) 555-2222,Rey,no\n+442079460018,Finn,\n415.555.3333,Kylo,yes\n"
        )

        response = self.client.post(IMPORT_URL, {"file": upload})

        self.assertRedirects(response, "/admin/conversations/caller/")
        callers = {str(c.phone_number): (c.name, c.blocked) for c in Caller.objects.all()}
        self.assertEqual(
            callers,
            {
                "+14155552222": ("Rey", False),
                "+442079460018": ("Finn", False),
                "+14155553333": ("Kylo", True),
            },
        )

    def test_it_updates_callers_it_already_knows(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Rey")

        response = self.client.post(
            IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Rey Skywalker\n")}
        )

        self.assertEqual(Caller.objects.get().name, "Rey Skywalker")
        messages = [str(m) for m in response.wsgi_request._messages]
        self.assertEqual(messages, ["Imported 1 callers: 0 new, 1 updated."])

    def test_it_reports_bad_lines_by_number_and_imports_nothing(self) -> None:
        upload = csv_file(
            "phone_number,name,blocked\n+14155552222,Rey,no\nnot a number,Finn,no\n+14155553333,,no\n+14155554444,Poe,maybe\n(415) 555-2222,Rey again,no\n"
        )

        response = self.client.post(IMPORT_URL, {"file": upload})

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.context["problems"],
            [
                "Line 3: 'not a number' is not a valid phone number.",
                "Line 4: the name is empty.",
                "Line 5: blocked must be yes or no, not 'maybe'.",
                "Line 6: +14155552222 is already on line 2.",
            ],
        )
        self.assertContains(response, "Line 3: &#x27;not a number&#x27; is not a valid phone number.")
        self.assertFalse(Caller.objects.exists())

    def test_it_needs_the_header(self) -> None:
        response = self.client.post(IMPORT_URL, {"file": csv_file("+14155552222,Rey\n")})

        self.assertIn("Line 1: the header needs the columns", response.context["problems"][0])
        self.assertFalse(Caller.objects.exists())

    def test_it_refuses_a_file_that_is_not_utf8(self) -> None:
        response = self.client.post(
            IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Zoë\n", "utf-16")}
        )

        self.assertEqual(response.context["problems"], ["The file is not UTF-8 text; save it as CSV UTF-8."])

    def test_it_reads_files_saved_by_spreadsheets_with_a_bom(self) -> None:
        self.client.post(
            IMPORT_URL, {"file": csv_file("phone_number,name\r\n+14155552222,Zoë\r\n", "utf-8-sig")}
        )

        self.assertEqual(Caller.objects.get().name, "Zoë")

    def test_it_exports_every_caller(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Rey, of Jakku")
        Caller.objects.create(phone_number="+14155553333", name="Kylo", blocked=True)

        response = self.client.get("/admin/conversations/caller/export/")

        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        self.assertIn("attachment;", response["Content-Disposition"])
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        self.assertEqual(
            rows,
            [
                ["phone_number", "name", "blocked"],
                ["+14155553333", "Kylo", "yes"],
                ["+14155552222", "Rey, of Jakku", "no"],
            ],
        )

    def test_it_exports_the_selected_callers(self) -> None:
        rey = Caller.objects.create(phone_number="+14155552222", name="Rey")
        Caller.objects.create(phone_number="+14155553333", name="Kylo")

        response = self.client.post(
            "/admin/conversations/caller/", {"action": "export_csv", "_selected_action": [rey.pk]}
        )

        self.assertEqual(
            response.content.decode().splitlines(), ["phone_number,name,blocked", "+14155552222,Rey,no"]
        )

    def test_it_imports_what_it_exported(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name='Rey "the scavenger"', blocked=True)
        exported = self.client.get("/admin/conversations/caller/export/").content
        Caller.objects.all().delete()

        self.client.post(IMPORT_URL, {"file": SimpleUploadedFile("c.csv", exported)})

        caller = Caller.objects.get()
        self.assertEqual(
            (str(caller.phone_number), caller.name, caller.blocked),
            ("+14155552222", 'Rey "the scavenger"', True),
        )

    def test_it_lets_only_staff_who_may_add_callers_import(self) -> None:
        self.client.force_login(User.objects.create(username="viewer", is_staff=True))

        response = self.client.post(IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Rey\n")})

        self.assertEqual(response.status_code, 403)
        self.assertFalse(Caller.objects.exists())
