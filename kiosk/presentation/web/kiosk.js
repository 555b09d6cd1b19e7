// The kiosk page: renders each frame the kiosk pushes (Server-Sent Events) and acknowledges it once
// it is painted with its fonts and images, so the kiosk knows when the customer can see it. Text
// from outside is only ever set as textContent.
"use strict";

const $ = (selector) => document.querySelector(selector);

// Every face kiosk.css declares, requested now: a face is otherwise fetched only once some text
// needs it, and until it arrives Chromium paints that text invisible.
const FACES = ["400 16px KioskSans", "700 16px KioskSans", "700 16px KioskMono"];
const facesRequested = Promise.all(FACES.map((face) => document.fonts.load(face))).catch(() => {});
let newest = 0;

function setText(selector, text) {
  const node = $(selector);
  node.textContent = text || "";
  return node;
}

function render(frame) {
  const body = document.body;
  body.dataset.state = frame.state;
  body.dataset.notice = frame.notice || "";
  body.classList.toggle("touch", Boolean(frame.touch));
  document.documentElement.lang = frame.lang;
  for (const screen of document.querySelectorAll(".screen")) {
    screen.classList.toggle("active", screen.dataset.for.split(" ").includes(frame.state));
  }
  setText(".message .title", frame.title);
  setText(".message .subtitle", frame.subtitle);
  const offline = $(".offline");
  offline.hidden = !frame.offline;
  offline.textContent = frame.offline ? frame.labels.offline : "";
  const voucher = frame.voucher;
  if (voucher) {
    setText(".shop-name", voucher.shop_name);
    const logo = $(".logo");
    logo.hidden = !voucher.logo;
    if (voucher.logo) logo.src = voucher.logo; else logo.removeAttribute("src");
    setText(".thanks", frame.title);
    setText(".discount", voucher.discount);
    setText(".use-code .label", voucher.labels.use_code);
    setText(".use-code .code", voucher.code);
    setText(".expires", voucher.expires_line).hidden = !voucher.expires_line;
    setText(".conditions", voucher.conditions);
    $(".about").hidden = !voucher.shop_description;
    setText(".about h2", voucher.labels.about);
    setText(".about p", voucher.shop_description);
    $(".qr img").src = voucher.qr_svg;
    setText(".qr figcaption", frame.subtitle);
  }
  setText(".voucher .status", frame.status);
  renderLanguages(frame);
  newest = frame.seq;
  whenReady().then(() => {
    if (frame.seq !== newest) return;  // a newer frame came meanwhile: its own acknowledgement counts
    // rAF runs just before the frame is painted; a task queued from it runs just after the paint.
    requestAnimationFrame(() => setTimeout(() => acknowledge(frame.seq), 0));
  });
}

// Resolves once the text just set can be painted in its own fonts and the visible images decoded.
async function whenReady() {
  await facesRequested;
  void document.body.offsetHeight;  // layout now, so any face the new text needs is requested
  await document.fonts.ready;
  const images = [...document.querySelectorAll(".screen.active img")].filter((img) => !img.hidden && img.src);
  await Promise.all(images.map((img) => img.decode().catch(() => {})));
}

function renderLanguages(frame) {
  const nav = $(".languages");
  nav.hidden = !(frame.touch && frame.languages && frame.languages.length > 1);
  if (nav.hidden) return;
  nav.setAttribute("aria-label", frame.labels.language);
  nav.replaceChildren(...frame.languages.map((language) => {
    const button = document.createElement("button");
    button.textContent = language.name;
    button.lang = language.locale.split("_")[0];
    button.setAttribute("aria-pressed", String(language.locale === frame.locale));
    button.addEventListener("click", () => {
      fetch("/locale", {method: "POST", headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({locale: language.locale})});
    });
    return button;
  }));
}

// Time to read: on a touch screen, a touch on the voucher (not on a language button) keeps it up.
document.addEventListener("pointerdown", (event) => {
  const body = document.body;
  if (!body.classList.contains("touch") || body.dataset.state !== "showing_voucher") return;
  if (event.target.closest(".languages")) return;
  fetch("/touch", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}).catch(() => {});
});

function acknowledge(seq) {
  document.body.dataset.seq = String(seq);
  const post = () => fetch("/ack", {method: "POST", headers: {"Content-Type": "application/json"},
                                    body: JSON.stringify({seq})});
  post().catch(post).catch(() => {});  // once more: the server may just have closed an idle connection
}

const events = new EventSource("/events");
events.onmessage = (message) => render(JSON.parse(message.data));
events.onerror = () => { document.body.dataset.state = document.body.dataset.state || "connecting"; };
