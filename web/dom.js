// Small DOM helpers shared by the page's modules. Text always goes in as
// text (never as HTML): event payloads come from other people's input.

/** `h("div.card", { dataset: { deal: id } }, "text", child)` */
export function h(tag, props = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const node = document.createElement(name);
  if (classes.length) node.className = classes.join(" ");
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Initials for an avatar: "Alice Martin" → "AM". */
function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/);
  return (parts[0][0] + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

/** A stable hue per user id, so a person keeps their colour everywhere. */
function hue(id) {
  let hash = 0;
  for (const char of String(id)) hash = (hash * 31 + char.charCodeAt(0)) % 360;
  return hash;
}

export function avatar(userId, userName, extraClass = "") {
  const node = h(`span.avatar${extraClass}`, { title: userName, dataset: { user: userId } }, initials(userName));
  node.style.setProperty("--hue", hue(userId));
  return node;
}

const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
export const clock = (iso) => time.format(iso ? new Date(iso) : new Date());
