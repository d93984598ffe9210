// A broadcast's page keeps its progress up to date while staff watch: it asks the progress
// view (counted from the rows, as the page is) every few seconds, and reloads the page once
// the status changes, so that its buttons and failures match.
"use strict";

const POLL_MS = 2000;

function show(section, data) {
    section.querySelector(".broadcast-bar-done").style.width = `${data.percent}%`;
    section.querySelector("[role=progressbar]").setAttribute("aria-valuenow", data.percent);
    section.querySelector(".broadcast-percent").textContent = `${data.percent} %`;
    section.querySelector(".broadcast-eta").textContent = data.eta;
    section.querySelector(".broadcast-status").textContent = data.status_label;
    for (const [name, count] of Object.entries(data.counts)) {
        const cell = section.querySelector(`[data-count="${name}"]`);
        if (cell) cell.textContent = count;
    }
}

async function poll(section) {
    try {
        const response = await fetch(section.dataset.progressUrl, { headers: { Accept: "application/json" } });
        if (response.ok) {
            const data = await response.json();
            show(section, data);
            if (data.status !== section.dataset.status) {
                window.location.reload();
                return;
            }
        }
    } catch (error) {
        // The server restarting: the next poll tries again.
    }
    setTimeout(() => poll(section), POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
    const section = document.getElementById("broadcast-progress");
    if (section && section.dataset.progressUrl) setTimeout(() => poll(section), POLL_MS);
});
