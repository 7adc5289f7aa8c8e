// The design document's system as written (docs: message-send-performance.md, "After"): a
// Node.js send handler that saves the message, answers at once, and fires the Pusher trigger
// without awaiting it, logging a failure and nothing more:
//
//   triggerNewMessage(conversationId, messageData).catch(err => {
//     console.error('Pusher trigger failed:', err);
//   });
//   return NextResponse.json({ success: true, message });
//
// The document's handler is a Next.js route; this is the same handler on Express (the
// smallest common Node.js server with the same shape), with the official `pusher`
// (pusher-http-node) singleton and a `pg` pool. No retry, no outbox, no batching: a failed
// trigger is a lost event ("Silent failures", the document's Cons).
//
// Environment: PORT, DATABASE_URL, AUTH_JWT_SECRET, PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET,
// PUSHER_HOST, PUSHER_PORT (the names `python -m service serve` reads).
"use strict"

const crypto = require("node:crypto")
const express = require("express")
const pg = require("pg")
const Pusher = require("pusher")

const env = process.env

// "Pusher singleton is already implemented" (the document's Future Improvements, 5)
const pusher = new Pusher({
  appId: env.PUSHER_APP_ID,
  key: env.PUSHER_KEY,
  secret: env.PUSHER_SECRET,
  host: env.PUSHER_HOST,
  port: env.PUSHER_PORT,
  useTLS: false,
})

// sized like the service's pool (db_pool_max_size = 10)
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 10 })

function triggerNewMessage(conversationId, messageData) {
  return pusher.trigger(`private-conversation-${conversationId}`, "new-message", messageData)
}

// "10ms → Auth check": an HS256 bearer token whose `sub` is the user, verified with Node's
// own crypto (the same secret and claims as the service's tokens).
const jwtSecret = Buffer.from(env.AUTH_JWT_SECRET || "")

function userOf(header) {
  const match = /^Bearer (.+)$/.exec(header || "")
  const parts = match ? match[1].split(".") : []
  if (parts.length !== 3) return null
  const [head, body, signature] = parts
  const expected = crypto.createHmac("sha256", jwtSecret).update(`${head}.${body}`).digest()
  const given = Buffer.from(signature, "base64url")
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null
  try {
    if (JSON.parse(Buffer.from(head, "base64url")).alg !== "HS256") return null
    const claims = JSON.parse(Buffer.from(body, "base64url"))
    if (claims.exp !== undefined && claims.exp * 1000 < Date.now()) return null
    const user = Number(claims.sub)
    return Number.isSafeInteger(user) && user > 0 ? user : null
  } catch {
    return null
  }
}

// ids and seqs are bigint, which pg returns as strings; the message's JSON carries numbers, as
// the document's ORM and the service give them
pg.types.setTypeParser(pg.types.builtins.INT8, Number)

// The service's schema (the migrated database): the conversation of the ordered pair takes the
// next seq and the message is stored in one statement. `delivered_at` is set at once: this
// system keeps no record of delivery, so no row waits in the pending-delivery index.
const INSERT_MESSAGE = `
WITH c AS (
  UPDATE conversations SET last_seq = last_seq + 1
  WHERE user_low = $1 AND user_high = $2
  RETURNING id, last_seq
)
INSERT INTO messages (conversation_id, seq, sender_id, recipient_id, content, delivered_at)
SELECT id, last_seq, $3, $4, $5, now() FROM c
RETURNING id, conversation_id AS "conversationId", seq, sender_id AS "senderId",
          recipient_id AS "recipientId", content, created_at AS "createdAt"`

const CREATE_CONVERSATION = `
INSERT INTO conversations (user_low, user_high) VALUES ($1, $2)
ON CONFLICT (user_low, user_high) DO NOTHING`

async function saveMessage(senderId, recipientId, content) {
  const pair = [Math.min(senderId, recipientId), Math.max(senderId, recipientId)]
  const values = [...pair, senderId, recipientId, content]
  let result = await pool.query(INSERT_MESSAGE, values)
  if (result.rowCount === 0) {
    // the first message of the pair: create its conversation (maybe racing another send)
    await pool.query(CREATE_CONVERSATION, pair)
    result = await pool.query(INSERT_MESSAGE, values)
  }
  return result.rows[0]
}

const app = express()
app.use(express.json())

app.post("/api/messages/send", async (req, res) => {
  const senderId = userOf(req.get("authorization"))
  if (senderId === null) return res.status(401).json({ error: "Unauthorized" })
  const { recipientId, content } = req.body || {}
  const recipient = Number(recipientId)
  if (!Number.isSafeInteger(recipient) || recipient <= 0 || recipient === senderId) {
    return res.status(400).json({ error: "Invalid recipientId" })
  }
  if (typeof content !== "string" || content.length === 0) {
    return res.status(400).json({ error: "Invalid content" })
  }
  let message
  try {
    message = await saveMessage(senderId, recipient, content)
  } catch (err) {
    console.error("Message save failed:", err)
    return res.status(500).json({ error: "Failed to send message" })
  }
  // AFTER (Fast - ~100ms): not awaited
  triggerNewMessage(message.conversationId, message).catch((err) => {
    console.error("Pusher trigger failed:", err)
  })
  return res.json({ success: true, message })
})

// a GET answers 404 (< 500): what the bench's readiness probe waits for
const server = app.listen(Number(env.PORT), "127.0.0.1", 2048)

function stop() {
  server.close(() => pool.end().then(() => process.exit(0)))
  server.closeAllConnections()
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
