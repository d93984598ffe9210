"""Who may use the simulator, and what each permission lets them see."""

from django.contrib.auth.models import User
from django.test import Client, override_settings

from conversations.models import Caller, Message
from tests.factories import staff_with
from tests.test_simulator import ONE, SimulatorTestCase
from tests.twilio import RECIPIENT, SENDER


class SimulatorAccessTestCase(SimulatorTestCase):
    def test_it_sends_anonymous_visitors_to_the_admin_login(self) -> None:
        response = Client().get("/simulator/")

        self.assertRedirects(response, "/admin/login/?next=/simulator/")

    def test_it_sends_users_who_are_not_staff_to_the_admin_login(self) -> None:
        self.client.force_login(User.objects.create(username="bob"))

        response = self.client.get("/simulator/")

        self.assertRedirects(response, "/admin/login/?next=/simulator/")

    def test_it_refuses_staff_without_the_simulator_permission(self) -> None:
        self.client.force_login(staff_with("carol", "view_message", "view_caller", "view_conversation"))

        self.assertEqual(self.client.get("/simulator/").status_code, 403)
        self.assertEqual(self.text("STOP").status_code, 403)
        self.assertFalse(Message.objects.exists())

    def test_it_lets_staff_with_the_simulator_permission_text(self) -> None:
        self.client.force_login(staff_with("dave", "use_simulator"))

        self.assertEqual(self.text("hello").status_code, 200)
        self.assertEqual(Message.objects.get().reply, ONE)

    @override_settings(SIMULATOR_ENABLED=False)
    def test_it_is_not_found_when_switched_off(self) -> None:
        self.assertEqual(self.client.get("/simulator/").status_code, 404)
        self.assertEqual(self.text("hello").status_code, 404)
        self.assertFalse(Message.objects.exists())

    def test_it_is_linked_from_the_admin(self) -> None:
        response = self.client.get("/admin/")

        self.assertContains(response, '<a href="/simulator/">SMS simulator</a>', html=True)

    @override_settings(SIMULATOR_ENABLED=False)
    def test_the_admin_hides_its_link_when_it_is_switched_off(self) -> None:
        response = self.client.get("/admin/")

        self.assertNotContains(response, 'href="/simulator/"')

    def test_the_admin_hides_its_link_from_staff_without_the_permission(self) -> None:
        self.client.force_login(staff_with("carol", "view_message"))

        response = self.client.get("/admin/")

        self.assertNotContains(response, 'href="/simulator/"')

    def test_it_is_never_cached(self) -> None:
        for response in (self.client.get("/simulator/"), self.client.post("/simulator/", {"body": "hi"})):
            cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
            self.assertLessEqual({"no-store", "private"}, cache_control)

    def test_it_refuses_a_post_without_csrf_token(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.staff)

        response = client.post("/simulator/", {"sender": SENDER, "recipient": RECIPIENT, "body": "hi"})

        self.assertEqual(response.status_code, 403)
        self.assertFalse(Message.objects.exists())

    def test_it_takes_a_post_with_the_page_csrf_token(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.staff)
        token = client.get("/simulator/").context["csrf_token"]

        response = client.post(
            "/simulator/",
            {"sender": SENDER, "recipient": RECIPIENT, "body": "hi", "csrfmiddlewaretoken": token},
        )

        self.assertEqual(response.status_code, 302)
        self.assertEqual(Message.objects.get().reply, ONE)


class SimulatorViewPermissionsTestCase(SimulatorTestCase):
    def setUp(self) -> None:
        super().setUp()
        Caller.objects.create(phone_number="+14155550001", name="Rey")
        self.text("secret plans", sender="+14155550001")

    def test_it_shows_everything_to_a_superuser(self) -> None:
        response = self.open("+14155550001")

        self.assertContains(response, "secret plans")
        self.assertContains(response, '<option value="+14155550001">Rey</option>', html=True)
        self.assertContains(response, "<strong>Rey</strong>", html=True)
        self.assertContains(response, "Recent conversations")

    def test_it_shows_nothing_but_the_phone_without_view_permissions(self) -> None:
        self.client.force_login(staff_with("eve", "use_simulator"))

        response = self.open("+14155550001")

        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, "secret plans")
        self.assertNotContains(response, 'id="sim-thread"')
        self.assertNotContains(response, "Rey")
        self.assertNotContains(response, 'id="sim-callers"')
        self.assertNotContains(response, "Recent conversations")

    def test_it_shows_the_thread_to_users_who_may_view_messages(self) -> None:
        self.client.force_login(staff_with("eve", "use_simulator", "view_message"))

        response = self.open("+14155550001")

        self.assertContains(response, "secret plans")
        self.assertNotContains(response, "<strong>Rey</strong>", html=True)
        self.assertNotContains(response, 'id="sim-callers"')

    def test_it_shows_caller_names_to_users_who_may_view_callers(self) -> None:
        self.client.force_login(staff_with("eve", "use_simulator", "view_caller"))

        response = self.open("+14155550001")

        self.assertContains(response, "<strong>Rey</strong>", html=True)
        self.assertContains(response, '<option value="+14155550001">Rey</option>', html=True)
        self.assertNotContains(response, "secret plans")

    def test_it_shows_recent_senders_to_users_who_may_view_conversations(self) -> None:
        self.client.force_login(staff_with("eve", "use_simulator", "view_conversation"))

        response = self.open(SENDER)

        self.assertContains(response, "Recent conversations")
        self.assertContains(
            response, '<a href="/simulator/?sender=%2B14155550001&amp;recipient=%2B15005550006">'
        )
        self.assertNotContains(response, "Rey")
