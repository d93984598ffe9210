import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse
from django.test import TestCase, override_settings

from conversations.models import Caller
from tests.factories import staff_with, superuser

IMPORT_URL = "/admin/conversations/caller/import/"


def csv_file(text: str, encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile("callers.csv", text.encode(encoding), content_type="text/csv")


def messages_of(response: HttpResponse) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


class CallerCsvTestCase(TestCase):
    def setUp(self) -> None:
        self.client.force_login(superuser())

    def import_file(self, upload: SimpleUploadedFile) -> HttpResponse:
        """Upload, look at the preview, confirm: as staff do."""
        preview = self.client.post(IMPORT_URL, {"file": upload})
        self.assertEqual(preview.status_code, 200)
        self.assertIn("token", preview.context, preview.context.get("problems"))
        return self.client.post(IMPORT_URL, {"confirm": "1", "token": preview.context["token"]})

    def test_it_imports_and_normalizes_each_number(self) -> None:
        upload = csv_file(
            "phone_number,name,blocked\n(415) 555-2222,Rey,no\n+442079460018,Finn,\n415.555.3333,Kylo,yes\n"
        )

        response = self.import_file(upload)

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

        response = self.import_file(csv_file("phone_number,name\n+14155552222,Rey Skywalker\n"))

        self.assertEqual(Caller.objects.get().name, "Rey Skywalker")
        self.assertEqual(messages_of(response), ["Imported 1 caller: 0 new, 1 updated."])

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

        self.assertIn("Line 1: the header needs a phone_number column", response.context["problems"][0])
        self.assertFalse(Caller.objects.exists())

    def test_it_refuses_a_file_that_is_not_utf8(self) -> None:
        response = self.client.post(
            IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Zoë\n", "utf-16")}
        )

        self.assertEqual(response.context["problems"], ["The file is not UTF-8 text; save it as CSV UTF-8."])

    def test_it_reads_files_saved_by_spreadsheets_with_a_bom(self) -> None:
        self.import_file(csv_file("phone_number,name\r\n+14155552222,Zoë\r\n", "utf-8-sig"))

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
                ["'+14155553333", "Kylo", "yes"],
                ["'+14155552222", "Rey, of Jakku", "no"],
            ],
        )

    def test_it_exports_the_selected_callers(self) -> None:
        rey = Caller.objects.create(phone_number="+14155552222", name="Rey")
        Caller.objects.create(phone_number="+14155553333", name="Kylo")

        response = self.client.post(
            "/admin/conversations/caller/", {"action": "export_csv", "_selected_action": [rey.pk]}
        )

        self.assertEqual(
            response.content.decode().splitlines(), ["phone_number,name,blocked", "'+14155552222,Rey,no"]
        )

    def test_it_imports_what_it_exported(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name='Rey "the scavenger"', blocked=True)
        Caller.objects.create(phone_number="+442079460018", name="=1+2 Finn")
        exported = self.client.get("/admin/conversations/caller/export/").content
        Caller.objects.all().delete()

        self.import_file(SimpleUploadedFile("c.csv", exported))

        callers = {str(c.phone_number): (c.name, c.blocked) for c in Caller.objects.all()}
        self.assertEqual(
            callers,
            {"+14155552222": ('Rey "the scavenger"', True), "+442079460018": ("=1+2 Finn", False)},
        )

    def test_it_neutralises_spreadsheet_formulas_on_export(self) -> None:
        names = ['=HYPERLINK("http://x")', "+1 cmd", "-2+3", "@SUM(A1)", "\tTab", "\rReturn", "Rey - ok"]
        for number, name in enumerate(names):
            Caller.objects.create(phone_number=f"+1415555220{number}", name=name)

        response = self.client.get("/admin/conversations/caller/export/")

        exported = {row[1] for row in csv.reader(io.StringIO(response.content.decode(), newline=""))}
        expected = {"'" + name for name in names[:-1]} | {"Rey - ok", "name"}
        self.assertEqual(exported, expected)

    def test_it_leaves_blocked_as_it_is_when_the_file_has_no_blocked_column(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Rey", blocked=True)

        self.import_file(csv_file("phone_number,name\n+14155552222,Rey Skywalker\n+14155553333,Finn\n"))

        callers = {str(c.phone_number): (c.name, c.blocked) for c in Caller.objects.all()}
        self.assertEqual(callers, {"+14155552222": ("Rey Skywalker", True), "+14155553333": ("Finn", False)})

    def test_it_leaves_names_as_they_are_when_the_file_has_no_name_column(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Rey")

        self.import_file(csv_file("phone_number,blocked\n+14155552222,yes\n"))

        caller = Caller.objects.get()
        self.assertEqual((caller.name, caller.blocked), ("Rey", True))

    def test_it_needs_a_name_for_a_new_caller(self) -> None:
        response = self.client.post(
            IMPORT_URL, {"file": csv_file("phone_number,blocked\n+14155552222,yes\n")}
        )

        self.assertEqual(
            response.context["problems"],
            ["Line 2: +14155552222 is not a caller yet and the file has no name column."],
        )
        self.assertFalse(Caller.objects.exists())

    def test_it_matches_headers_in_any_case_with_spaces_or_underscores(self) -> None:
        for header in (
            "Phone Number,Name,Blocked",
            "phone_number,NAME,blocked",
            " PHONE_number , name,BLOCKED",
        ):
            with self.subTest(header=header):
                Caller.objects.all().delete()
                self.import_file(csv_file(f"{header}\n+14155552222,Rey,yes\n"))
                caller = Caller.objects.get()
                self.assertEqual((caller.name, caller.blocked), ("Rey", True))

    def test_it_previews_what_will_change_before_writing_anything(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Rey")
        Caller.objects.create(phone_number="+14155553333", name="Kylo", blocked=True)

        response = self.client.post(
            IMPORT_URL,
            {
                "file": csv_file(
                    "phone_number,name,blocked\n+14155552222,Rey Skywalker,no\n"
                    "+14155553333,Kylo,yes\n+14155554444,Finn,no\n"
                )
            },
        )

        self.assertContains(response, "1 caller to create")
        self.assertContains(response, "1 caller to update")
        self.assertContains(response, "1 caller already up to date")
        self.assertContains(response, "name: Rey → Rey Skywalker")
        self.assertContains(response, 'name="confirm"')
        self.assertEqual(sorted(Caller.objects.values_list("name", flat=True)), ["Kylo", "Rey"])

    def test_it_applies_on_confirm_exactly_what_was_previewed_without_the_file(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Rey", blocked=True)
        preview = self.client.post(
            IMPORT_URL,
            {"file": csv_file("Phone Number,Name\n+14155552222,Rey Skywalker\n+14155554444,Finn\n")},
        )

        response = self.client.post(IMPORT_URL, {"confirm": "1", "token": preview.context["token"]})

        self.assertRedirects(response, "/admin/conversations/caller/")
        self.assertEqual(messages_of(response), ["Imported 2 callers: 1 new, 1 updated."])
        callers = {str(c.phone_number): (c.name, c.blocked) for c in Caller.objects.all()}
        self.assertEqual(callers, {"+14155552222": ("Rey Skywalker", True), "+14155554444": ("Finn", False)})

    def test_it_imports_a_preview_once(self) -> None:
        preview = self.client.post(IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Rey\n")})
        confirm = {"confirm": "1", "token": preview.context["token"]}
        self.client.post(IMPORT_URL, confirm)
        Caller.objects.all().delete()

        response = self.client.post(IMPORT_URL, confirm)

        self.assertEqual(
            messages_of(response)[-1], "That preview is no longer pending; upload the file again."
        )
        self.assertFalse(Caller.objects.exists())

    def test_it_refuses_a_confirm_with_a_token_it_did_not_give(self) -> None:
        self.client.post(IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Rey\n")})

        self.client.post(IMPORT_URL, {"confirm": "1", "token": "forged"})

        self.assertFalse(Caller.objects.exists())

    def test_it_says_when_every_caller_is_already_up_to_date(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Rey")

        response = self.client.post(IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Rey\n")})

        self.assertContains(response, "0 callers to create")
        self.assertContains(response, "1 caller already up to date")
        self.assertNotContains(response, 'name="confirm"')

    def test_it_refuses_a_file_over_the_size_limit(self) -> None:
        big = "phone_number,name\n" + "+14155552222,Rey\n" * 200_000  # 3.4 MB

        response = self.client.post(IMPORT_URL, {"file": csv_file(big)})

        self.assertFormError(
            response.context["form"],
            "file",
            "The file is larger than 2.0\xa0MB; split it into smaller files.",
        )
        self.assertFalse(Caller.objects.exists())

    @override_settings(CALLER_IMPORT_MAX_BYTES=1000)
    def test_it_reads_the_size_limit_from_the_settings(self) -> None:
        response = self.client.post(IMPORT_URL, {"file": csv_file("phone_number,name\n" + "x" * 1000)})

        self.assertFormError(
            response.context["form"],
            "file",
            "The file is larger than 1000\xa0bytes; split it into smaller files.",
        )

    def test_it_refuses_a_huge_field_with_a_clear_error(self) -> None:
        upload = csv_file("phone_number,name\n+14155552222,Rey\n+14155553333," + "A" * 200_000 + "\n")

        response = self.client.post(IMPORT_URL, {"file": upload})

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.context["problems"],
            ["Line 3: a cell is longer than 131,072 characters; is this a CSV file of callers?"],
        )
        self.assertFalse(Caller.objects.exists())

    def test_it_refuses_a_nul_byte_with_a_clear_error(self) -> None:
        response = self.client.post(
            IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Re\x00y\n")}
        )

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.context["problems"],
            ["Line 2: the file holds a NUL byte, so it is not a CSV text file; save it as CSV UTF-8."],
        )
        self.assertFalse(Caller.objects.exists())

    def test_it_refuses_a_file_in_another_encoding(self) -> None:
        response = self.client.post(
            IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Zoë\n", "latin-1")}
        )

        self.assertEqual(response.context["problems"], ["The file is not UTF-8 text; save it as CSV UTF-8."])
        self.assertFalse(Caller.objects.exists())

    def test_it_refuses_control_characters_in_a_name(self) -> None:
        for name in ("Rey\x07", "\x1b[31mRey"):
            with self.subTest(name=name):
                upload = csv_file(f'phone_number,name\n+14155552222,"{name}"\n')

                response = self.client.post(IMPORT_URL, {"file": upload})

                self.assertEqual(
                    response.context["problems"],
                    [f"Line 2: the name {name!r} holds control characters; remove them."],
                )
                self.assertFalse(Caller.objects.exists())

    def test_it_lets_only_staff_who_may_add_callers_import(self) -> None:
        self.client.force_login(staff_with("viewer"))

        response = self.client.post(IMPORT_URL, {"file": csv_file("phone_number,name\n+14155552222,Rey\n")})

        self.assertEqual(response.status_code, 403)
        self.assertFalse(Caller.objects.exists())
