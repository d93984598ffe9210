from django.test import TestCase


class LandingPageTestCase(TestCase):
    def test_it_answers_the_site_root_with_a_page_that_leads_to_the_admin(self) -> None:
        response = self.client.get("/")

        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "SMS Conversations")
        self.assertContains(response, 'href="/admin/"')

    def test_it_serves_an_icon_at_favicon_ico(self) -> None:
        response = self.client.get("/favicon.ico")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "image/svg+xml")
        self.assertTrue(response.content.startswith(b"<svg "))
        self.assertIn("max-age=86400", response["Cache-Control"])
