// Send texts and switch pairs without reloading the page. The forms work without this
// script: each is a plain GET or POST, and the POST redirects back to the thread.
"use strict";

function showLatest() {
    const thread = document.getElementById("sim-thread");
    if (thread) thread.scrollTop = thread.scrollHeight;
}

function addPendingBubble(form) {
    const body = form.elements.body.value;
    const bubble = document.createElement("li");
    bubble.className = "sim-bubble sim-sent sim-pending";
    bubble.textContent = body;
    document.getElementById("sim-thread").append(bubble);
    form.querySelector("button[type=submit]").disabled = true;
    showLatest();
}

async function submitInPlace(event) {
    const form = event.target;
    if (!form.closest("#simulator")) return;
    event.preventDefault();
    const data = new FormData(form);
    let url = form.action;
    const init = { method: form.method.toUpperCase(), credentials: "same-origin" };
    if (init.method === "GET") {
        url += "?" + new URLSearchParams(data);
    } else {
        init.body = data;
        addPendingBubble(form);
    }
    // fetch() follows the POST's redirect, so the answer is the thread as the server has it.
    const response = await fetch(url, init);
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("simulator");
    if (!fresh) {
        window.location.assign(response.url); // Logged out, or an error page: show it as is.
        return;
    }
    document.getElementById("simulator").replaceWith(fresh);
    const changedPair = response.url !== window.location.href;
    if (changedPair) window.history.pushState(null, "", response.url);
    showLatest();
    document.getElementById("id_body")?.focus();
}

// Enter sends, Shift+Enter starts a new line, as in a phone's messages app.
function sendOnEnter(event) {
    if (event.target.id !== "id_body" || event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    event.target.form.requestSubmit();
}

document.addEventListener("submit", submitInPlace);
document.addEventListener("keydown", sendOnEnter);
document.addEventListener("DOMContentLoaded", showLatest);
// Back and forward move between pairs; load the thread the address names.
window.addEventListener("popstate", () => window.location.reload());
