// Subscribes to one private channel with pusher-js and prints what happens as JSON lines.
// Env: WS_PORT, PUSHER_KEY, CHANNEL, and either AUTH_ENDPOINT + TOKEN (the service's
// /api/pusher/auth) or FORGED_AUTH (an auth string to present without asking the service).
const Pusher = require("pusher-js");

const out = (record) => process.stdout.write(JSON.stringify(record) + "\n");

const channelAuthorization = process.env.FORGED_AUTH
  ? { customHandler: (_params, callback) => callback(null, { auth: process.env.FORGED_AUTH }) }
  : {
      endpoint: process.env.AUTH_ENDPOINT,
      transport: "ajax",
      headers: { Authorization: `Bearer ${process.env.TOKEN}` },
    };

const pusher = new Pusher(process.env.PUSHER_KEY, {
  cluster: "mt1",
  wsHost: "127.0.0.1",
  wsPort: Number(process.env.WS_PORT),
  forceTLS: false,
  enabledTransports: ["ws"],
  enableStats: false,
  channelAuthorization,
});

pusher.connection.bind("connected", () => out({ type: "connected", socketId: pusher.connection.socket_id }));
pusher.connection.bind("error", (error) => out({ type: "connection_error", error: String(error && error.data && error.data.message || error) }));
pusher.bind("pusher:error", (data) => out({ type: "pusher_error", message: data && data.message }));

const channel = pusher.subscribe(process.env.CHANNEL);
channel.bind("pusher:subscription_succeeded", () => out({ type: "subscribed" }));
channel.bind("pusher:subscription_error", (error) => out({ type: "subscription_error", status: error && error.status }));
channel.bind("new-message", (data) => out({ type: "event", data }));

process.stdin.on("end", () => { pusher.disconnect(); process.exit(0); });
process.stdin.resume();
