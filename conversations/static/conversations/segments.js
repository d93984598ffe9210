// As a text is typed, say what it will cost: its length, encoding and SMS segments, by the
// rules of conversations/segments.py and with its tables (the #gsm-charset JSON), and which
// character, if any, turns the whole text into UCS-2. Works on every textarea[data-segments],
// including those the simulator puts in the page later.
"use strict";

const GSM_7 = "GSM-7";
const UCS_2 = "UCS-2";
let charset = null;

function tables() {
    if (!charset) {
        const data = JSON.parse(document.getElementById("gsm-charset").textContent);
        // A string spreads into its code points, as Python iterates a str.
        charset = { ...data, basic: new Set(data.basic), extension: new Set(data.extension) };
    }
    return charset;
}

function segmentsOf(text) {
    const { basic, extension, single, part } = tables();
    const chars = Array.from(text);
    const switchedBy = chars.find((char) => !basic.has(char) && !extension.has(char)) || "";
    const encoding = switchedBy ? UCS_2 : GSM_7;
    const units = chars.map((char) =>
        encoding === GSM_7 ? (extension.has(char) ? 2 : 1) : char.codePointAt(0) > 0xffff ? 2 : 1,
    );
    const characters = units.reduce((sum, size) => sum + size, 0);
    if (characters <= single[encoding]) {
        return { encoding, characters, count: text ? 1 : 0, switchedBy };
    }
    let count = 1;
    let room = part[encoding];
    for (const size of units) {
        if (size > room) {
            // An escape and its character, or a surrogate pair, stay in one part.
            count += 1;
            room = part[encoding];
        }
        room -= size;
    }
    return { encoding, characters, count, switchedBy };
}

function codePoint(char) {
    return "U+" + char.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
}

function counterOf(box) {
    let counter = box.nextElementSibling;
    if (!counter || !counter.classList.contains("segments")) {
        counter = document.createElement("div");
        counter.className = "segments help";
        counter.setAttribute("aria-live", "polite");
        box.after(counter);
    }
    return counter;
}

function showSegments(box) {
    const counter = counterOf(box);
    // A textarea's value has "\n" line breaks; the forms send them so (SendTextForm).
    const text = box.value;
    if (!text) {
        counter.replaceChildren();
        return;
    }
    const found = segmentsOf(text);
    const { single } = tables();
    const summary = document.createElement("span");
    summary.className = "segments-summary";
    summary.textContent =
        `${found.characters} character${found.characters === 1 ? "" : "s"} · ${found.encoding} · ` +
        `${found.count} segment${found.count === 1 ? "" : "s"}`;
    counter.replaceChildren(summary);
    if (found.switchedBy) {
        const warning = document.createElement("span");
        warning.className = "segments-warning";
        warning.textContent =
            ` · “${found.switchedBy}” (${codePoint(found.switchedBy)}) switches the whole text to UCS-2: ` +
            `${single[UCS_2]} characters a segment instead of ${single[GSM_7]}.`;
        counter.append(warning);
    }
}

document.addEventListener("input", (event) => {
    if (event.target.matches("textarea[data-segments]")) showSegments(event.target);
});
document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("textarea[data-segments]").forEach((box) => {
        if (box.value) showSegments(box);
    });
});
window.segmentsOf = segmentsOf; // For the browser test that holds it to segments_of().
