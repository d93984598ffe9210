// Send texts and switch pairs without reloading the page. The forms work without this
// script: each is a plain GET or POST, and the POST redirects back to the thread.
"use strict";

function showLatest() {
    const thread = document.getElementById("sim-thread");
    if (thread) thread.scrollTop = thread.scrollHeight;
}

function addPendingBubble(form) {
    const thread = document.getElementById("sim-thread");
    if (!thread) return;
    const bubble = document.createElement("li");
    bubble.className = "sim-bubble sim-sent sim-pending";
    bubble.textContent = form.elements.body.value;
    thread.append(bubble);
    showLatest();
}

function setBusy(form, busy) {
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = busy;
    form.dataset.busy = busy ? "yes" : "";
}

// The text stays in the box and Send works again, so it can simply be sent once more.
function showFailure(form, text) {
    document.querySelectorAll(".sim-pending").forEach((bubble) => bubble.remove());
    setBusy(form, false);
    const failure = document.getElementById("sim-failure");
    failure.textContent = text;
    failure.hidden = false;
}

function clearFailure() {
    const failure = document.getElementById("sim-failure");
    if (failure) failure.hidden = true;
}

async function submitInPlace(event) {
    const form = event.target;
    if (!form.closest("#simulator")) return;
    event.preventDefault();
    if (form.dataset.busy) return; // Enter pressed again while the text is on its way.
    const data = new FormData(form);
    let url = form.action;
    const init = { method: form.method.toUpperCase(), credentials: "same-origin" };
    if (init.method === "GET") {
        url += "?" + new URLSearchParams(data);
    } else {
        init.body = data;
        addPendingBubble(form);
    }
    clearFailure();
    setBusy(form, true);
    const what = init.method === "POST" ? "The text was not sent" : "The conversation did not open";
    let response;
    let page;
    try {
        // fetch() follows the POST's redirect, so the answer is the thread as the server has it.
        response = await fetch(url, init);
        page = new DOMParser().parseFromString(await response.text(), "text/html");
    } catch (error) {
        showFailure(form, `${what}: the app could not be reached (${error.message}). Try again.`);
        return;
    }
    if (response.status >= 500) {
        showFailure(form, `${what}: the app answered ${response.status} ${response.statusText}. Try again.`);
        return;
    }
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
