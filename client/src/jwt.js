// The client needs its own user id to tell its messages from the other participant's and to
// know which messages it must acknowledge. The server verifies the token; here we only read
// it, so no key is needed and nothing is trusted beyond what the server will enforce anyway.
export function userIdFromToken(token, claim = "sub") {
  const payloadPart = typeof token === "string" ? token.split(".")[1] : undefined;
  if (!payloadPart) throw new TypeError("token is not a JWT; pass options.userId");
  let payload;
  try {
    const base64 = payloadPart.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64.padEnd(Math.ceil(base64.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    payload = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new TypeError("token payload is not readable JSON; pass options.userId");
  }
  const value = payload?.[claim];
  // The service accepts the id as a number or a decimal string.
  const id = typeof value === "number" ? value : /^[1-9][0-9]*$/.test(String(value)) ? Number(value) : NaN;
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new TypeError(`token claim "${claim}" is not a positive integer user id; pass options.userId`);
  }
  return id;
}
