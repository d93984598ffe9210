"""Twilio's tutorial app for tracking SMS conversations, in Flask: the counter lives in the cookie.

The second reference `make bench` measures the project against, served by the same gunicorn
settings: no database, no signature check, nothing logged. Flask's session is the whole
state, signed into the cookie each reply sets, so texts of one pair that overlap lose counts.
"""

import os

from flask import Flask, request, session
from twilio.twiml.messaging_response import MessagingResponse

app = Flask(__name__)
app.secret_key = os.environ["SECRET_KEY"]

callers = {
    "+14158675308": "Rey",
    "+12349013030": "Finn",
    "+12348134522": "Chewy",
}


@app.route("/", methods=["GET", "POST"])
def hello() -> str:
    """Respond with the number of text messages sent between two parties."""
    counter = session.get("counter", 0)
    counter += 1
    session["counter"] = counter
    name = callers.get(request.values.get("From", ""), "Friend")
    message = f"{name} has messaged {request.values.get('To')} {counter} times."
    resp = MessagingResponse()
    resp.message(message)
    return str(resp)
