from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import TestCase, override_settings

from tests.factories import superuser

LOGIN = "/admin/login/"
PASSWORD = "a-long-staff-password"


# A fast hasher: the tests try dozens of passwords, and the strength of the hash is not under test.
@override_settings(AXES_FAILURE_LIMIT=5, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class LoginThrottlingTestCase(TestCase):
    def setUp(self) -> None:
        superuser(password=PASSWORD)

    def log_in(self, password: str, address: str = "203.0.113.7") -> bool:
        self.client.post(LOGIN, {"username": "staff", "password": password}, REMOTE_ADDR=address)
        return self.client.get("/admin/", REMOTE_ADDR=address).status_code == 200

    def test_it_logs_in_with_the_right_password(self) -> None:
        self.assertIs(self.log_in(PASSWORD), True)

    def test_it_refuses_the_right_password_after_thirty_wrong_ones(self) -> None:
        for attempt in range(30):
            self.log_in(f"wrong-{attempt}")

        response = self.client.post(
            LOGIN, {"username": "staff", "password": PASSWORD}, REMOTE_ADDR="203.0.113.7"
        )

        self.assertEqual(response.status_code, 429)
        self.assertEqual(self.client.get("/admin/", REMOTE_ADDR="203.0.113.7").status_code, 302)

    def test_it_locks_out_after_five_failures(self) -> None:
        for attempt in range(4):
            self.log_in(f"wrong-{attempt}")
        self.assertIs(self.log_in(PASSWORD), True)  # Four wrong ones are not yet a lockout.
        self.client.logout()

        for attempt in range(5):
            self.log_in(f"wrong-{attempt}")

        self.assertIs(self.log_in(PASSWORD), False)

    def test_it_locks_the_username_out_only_from_that_address(self) -> None:
        for attempt in range(5):
            self.log_in(f"wrong-{attempt}", address="203.0.113.7")

        self.assertIs(self.log_in(PASSWORD, address="198.51.100.20"), True)

    def test_staff_can_unlock_a_username_with_the_management_command(self) -> None:
        for attempt in range(5):
            self.log_in(f"wrong-{attempt}")

        call_command("axes_reset_username", "staff", stdout=StringIO())

        self.assertIs(self.log_in(PASSWORD), True)

    def test_it_lists_failed_logins_in_the_admin(self) -> None:
        self.log_in("wrong")
        self.client.force_login(User.objects.get(username="staff"))

        response = self.client.get("/admin/axes/accessattempt/")

        self.assertContains(response, "staff")
        self.assertContains(response, "203.0.113.7")
