// The bridge's error codes in plain words: one place, so every part of the
// page says the same thing. `error` is the seed's error object
// `{ code, message, details?, retryAfter? }`.

export function describe(error) {
  const reason = error?.details?.reason;
  switch (error?.code) {
    case "UNAUTHORIZED":
      return "Your session expired — sign in again.";
    case "RATE_LIMITED":
      if (reason === "slow_consumer") return "This page fell behind — catching up.";
      if (reason === "flood") return "Too many requests — disconnected for a moment.";
      if (reason === "user_connections") return "You have too many tabs open on this bridge.";
      return `Too many requests — trying again in ${seconds(error.retryAfter)}.`;
    case "FORBIDDEN":
      return "Not allowed: that belongs to another organisation or origin.";
    case "INVALID_REQUEST":
      return `The bridge refused a request: ${error.message}`;
    case "RESOURCE_NOT_FOUND":
      return `Not found: ${error.message}`;
    case "SERVER_ERROR":
      return "The bridge could not serve this in time — reconnecting.";
    default:
      return error?.message || "Something went wrong.";
  }
}

/** Whether the page must sign in again to go on. */
export const needsSignIn = (error) => error?.code === "UNAUTHORIZED";

function seconds(ms) {
  const s = Math.max(1, Math.ceil((ms ?? 1000) / 1000));
  return s === 1 ? "a second" : `${s} seconds`;
}
