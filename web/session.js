// Who is signed in. In dev mode the bridge offers the demo producer's users
// (`GET /dev/users`) and signs a token for the one picked (`POST /dev/token`);
// elsewhere those answer 404 and the page asks for a token from your
// identity provider instead. The session lives in sessionStorage: one per
// tab, gone with the tab.

import { h } from "./dom.js";

const KEY = "crm-bridge.session";

/** `{ token, user: { id, name }, org, pipeline }`, or null. */
export function currentSession() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    return null;
  }
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

function keep(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

/** Shows the sign-in step in `section`, with `notice` above it; resolves with the new session. */
export async function signIn(section, notice = "") {
  section.replaceChildren(h("h2", {}, "Sign in"));
  if (notice) section.append(h("p.notice", { role: "alert" }, notice));
  const dev = await fetch("/dev/users").then((r) => (r.ok ? r.json() : null), () => null);
  section.hidden = false;
  const session = await (dev ? pickDemoUser(section, dev.organizations) : pasteToken(section));
  section.hidden = true;
  section.replaceChildren();
  return keep(session);
}

/** Dev mode: one button per demo user, grouped by organisation. */
function pickDemoUser(section, organizations) {
  section.append(h("p", {}, "Dev mode: pick a demo user. The bridge signs a token for them with its dev secret."));
  return new Promise((resolve) => {
    for (const org of organizations) {
      const users = org.users.map((user) =>
        h("button.user", {
          type: "button",
          dataset: { user: user.id, org: org.id },
          onclick: async (event) => {
            const button = event.currentTarget;
            button.disabled = true;
            try {
              const { token } = await devToken(user, org.id);
              resolve({ token, user, org: org.id, pipeline: org.pipeline });
            } catch (error) {
              button.disabled = false;
              section.append(h("p.notice", { role: "alert" }, error.message));
            }
          },
        }, user.name),
      );
      section.append(h("fieldset.org", {}, h("legend", {}, `${org.name} · ${org.pipeline}`), ...users));
    }
  });
}

async function devToken(user, org) {
  const response = await fetch("/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user: user.id, name: user.name, org }),
  });
  if (!response.ok) throw new Error(`dev token refused: ${response.status}`);
  return response.json();
}

/** Production: a token from the identity provider, and the pipeline to watch. */
function pasteToken(section) {
  const token = h("textarea", { name: "token", required: true, rows: 4, placeholder: "eyJhbGciOi…" });
  const pipeline = h("input", { name: "pipeline", required: true, placeholder: "pipeline_123" });
  const problem = h("p.notice", { role: "alert", hidden: true }, "That is not a JWT.");
  const form = h("form.paste", {},
    problem,
    h("label", {}, "Access token (JWT)", token),
    h("label", {}, "Pipeline id", pipeline),
    h("button", { type: "submit" }, "Open the pipeline"));
  section.append(form);
  return new Promise((resolve) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const claims = readClaims(token.value.trim());
      problem.hidden = Boolean(claims);
      if (!claims) return;
      resolve({
        token: token.value.trim(),
        user: { id: claims.sub, name: claims.name || claims.sub },
        org: claims.organizationId,
        pipeline: pipeline.value.trim(),
      });
    });
  });
}

/** The token's claims, for display only: the bridge verifies it. */
function readClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}
