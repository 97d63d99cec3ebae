// Incoming email (`email-received`, newest first, the last 50) and the
// signed-in user's `notification`s as toasts that fade after a while; a
// toast whose link names a deal opens it.

import { clock, h } from "./dom.js";

const KEPT = 50;
const TOAST_MS = 6000;

export function createInbox(list, toasts) {
  return {
    email({ emailId, subject, from, timestamp, replayed }) {
      list.querySelector(".empty")?.remove();
      list.prepend(
        h(replayed ? "li.email.replayed" : "li.email", { dataset: { email: emailId } },
          h("span.subject", {}, subject || "(no subject)"),
          h("span.from", {}, from),
          h("time", { datetime: timestamp }, clock(timestamp))),
      );
      while (list.children.length > KEPT) list.lastElementChild.remove();
    },
    notification({ id, title, message, link }) {
      const deal = /^\/deals\/([^/]+)$/.exec(link ?? "")?.[1];
      toast(toasts, h("div.toast.notification", { role: "status", dataset: { notification: id } },
        h("strong", {}, title),
        h("span", {}, message),
        deal ? h("a", { href: `#deal/${encodeURIComponent(deal)}` }, "Open deal") : null));
    },
    /** A problem worth a moment's attention, in plain words. */
    problem(message) {
      toast(toasts, h("div.toast.problem", { role: "alert" }, message));
    },
  };
}

function toast(container, node) {
  container.prepend(node);
  setTimeout(() => node.remove(), TOAST_MS);
}
