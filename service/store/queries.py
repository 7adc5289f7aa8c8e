"""Every SQL statement the service runs, named, with a one-line description each."""

from __future__ import annotations

#: the conversation id of an ordered user pair, if it exists
FIND_CONVERSATION = """
SELECT id FROM conversations WHERE user_low = $1 AND user_high = $2
"""

#: create the conversation of an ordered user pair; no row when it already exists
CREATE_CONVERSATION = """
INSERT INTO conversations (user_low, user_high) VALUES ($1, $2)
ON CONFLICT (user_low, user_high) DO NOTHING
RETURNING id
"""

#: the two participants of a conversation
CONVERSATION_PARTICIPANTS = """
SELECT user_low, user_high FROM conversations WHERE id = $1
"""

_MESSAGE_COLUMNS = (
    "id, conversation_id, seq, sender_id, recipient_id, content, client_message_id, created_at"
)

#: the unique constraint a repeated (sender, clientMessageId) violates
CLIENT_MESSAGE_ID_UNIQUE = "messages_client_message_id_unique"

# A send takes the conversation's next seq and inserts the message in one statement. There is
# no ON CONFLICT: a repeated clientMessageId must raise (CLIENT_MESSAGE_ID_UNIQUE) so that the
# statement, and the seq it took, roll back; DO NOTHING would keep the increment (a gap).
_INSERT_MESSAGE_FROM = """
INSERT INTO messages (conversation_id, seq, sender_id, recipient_id, content,
                      client_message_id, sender_socket_id, claimed_by, claimed_until,
                      traceparent)
"""

#: store one message in the existing conversation of the ordered pair ($1, $2) in a single
#: round trip (the common case); no row when the conversation does not exist yet.
#: $3.. as in INSERT_MESSAGE from $2.
INSERT_MESSAGE_IN_EXISTING_CONVERSATION = f"""
WITH c AS (
    UPDATE conversations SET last_seq = last_seq + 1
    WHERE user_low = $1 AND user_high = $2
    RETURNING id, last_seq
)
{_INSERT_MESSAGE_FROM}
SELECT c.id, c.last_seq, $3, $4, $5, $6, $7, $8::text,
       CASE WHEN $8::text IS NULL THEN NULL ELSE now() + make_interval(secs => $9) END, $10
FROM c
RETURNING {_MESSAGE_COLUMNS}
"""

#: store one message in conversation $1, claimed for delivery by replica $7 for $8 seconds
#: when $7 is not null
INSERT_MESSAGE = f"""
WITH c AS (
    UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1 RETURNING id, last_seq
)
{_INSERT_MESSAGE_FROM}
SELECT c.id, c.last_seq, $2, $3, $4, $5, $6, $7::text,
       CASE WHEN $7::text IS NULL THEN NULL ELSE now() + make_interval(secs => $8) END, $9
FROM c
RETURNING {_MESSAGE_COLUMNS}
"""

#: store many sends in one statement (group commit): row i of the arrays is send $1[i]; the
#: conversations of the ordered pairs ($2[i], $3[i]) take consecutive seqs in $1 order. Rows
#: whose conversation does not exist yet, or whose (sender, clientMessageId) is already stored,
#: are left out (no seq taken): the caller stores those one by one. Claimed rows ($10[i]) are
#: leased to replica $11 for $12 seconds. Returns each stored row with its `ord` ($1[i]).
INSERT_MESSAGES_BATCH = f"""
WITH input AS (
    SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[])
        AS t(ord, low, high, sender_id, recipient_id, content, client_message_id,
             sender_socket_id, traceparent, claimed)
),
fresh AS (
    SELECT * FROM input i
    WHERE i.client_message_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM messages m
        WHERE m.sender_id = i.sender_id AND m.client_message_id = i.client_message_id
    )
),
counts AS (
    SELECT low, high, count(*) AS n FROM fresh GROUP BY low, high
),
locked AS (
    -- in id order: two replicas' batches sharing conversations would otherwise lock them in
    -- whatever order their plans meet them, and deadlock (1 s each, then row by row)
    SELECT c.id, counts.n FROM conversations c
    JOIN counts ON c.user_low = counts.low AND c.user_high = counts.high
    ORDER BY c.id
    FOR NO KEY UPDATE OF c
),
bumped AS (
    UPDATE conversations c SET last_seq = c.last_seq + locked.n
    FROM locked WHERE c.id = locked.id
    RETURNING c.id, c.user_low, c.user_high, c.last_seq - locked.n AS seq_before
),
numbered AS MATERIALIZED (
    SELECT f.*, b.id AS conversation_id,
           b.seq_before + row_number() OVER (PARTITION BY b.id ORDER BY f.ord) AS seq
    FROM fresh f JOIN bumped b ON b.user_low = f.low AND b.user_high = f.high
),
inserted AS (
    {_INSERT_MESSAGE_FROM}
    SELECT conversation_id, seq, sender_id, recipient_id, content, client_message_id,
           sender_socket_id, CASE WHEN claimed THEN $11::text END,
           CASE WHEN claimed THEN now() + make_interval(secs => $12) END, traceparent
    FROM numbered
    RETURNING {_MESSAGE_COLUMNS}
)
SELECT inserted.*, numbered.ord FROM inserted
JOIN numbered USING (conversation_id, seq)
"""

#: the message a sender already stored under a clientMessageId
MESSAGE_BY_CLIENT_ID = f"""
SELECT {_MESSAGE_COLUMNS} FROM messages WHERE sender_id = $1 AND client_message_id = $2
"""

#: one page of a conversation's history after a message id. Ordered by id, which within one
#: conversation is seq order (the id is drawn after the conversation's row lock is taken), so
#: the (conversation_id, id) index serves it without a sort.
CONVERSATION_MESSAGES = f"""
SELECT {_MESSAGE_COLUMNS} FROM messages
WHERE conversation_id = $1 AND id > $2
ORDER BY id
LIMIT $3
"""

#: one page of a conversation's history after seq $2, in seq order
CONVERSATION_MESSAGES_AFTER_SEQ = f"""
SELECT {_MESSAGE_COLUMNS} FROM messages
WHERE conversation_id = $1 AND seq > $2
ORDER BY seq
LIMIT $3
"""

_PENDING = "delivered_at IS NULL AND dead_lettered_at IS NULL"
_DELIVERY_COLUMNS = f"{_MESSAGE_COLUMNS}, sender_socket_id, delivery_attempts, traceparent"

#: claim up to $2 pending messages that are due and not leased, oldest first, for replica $1
#: for $3 seconds; SKIP LOCKED lets replicas share the backlog without waiting on each other
CLAIM_DUE_MESSAGES = f"""
UPDATE messages SET claimed_by = $1, claimed_until = now() + make_interval(secs => $3)
WHERE id IN (
    SELECT id FROM messages
    WHERE {_PENDING} AND next_attempt_at <= now()
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING {_DELIVERY_COLUMNS}
"""

#: Pusher accepted these messages (ids $1) through replica $2
MARK_DELIVERED = """
UPDATE messages
SET delivered_at = now(), delivered_by = $2, claimed_by = NULL, claimed_until = NULL,
    delivery_attempts = delivery_attempts + 1, last_error = NULL
WHERE id = ANY($1::bigint[]) AND delivered_at IS NULL
"""

#: hand messages back to the relay: retry each id $1[i] after $2[i] seconds, recording
#: error $3 and counting an attempt when $4 — only those replica $5 still holds: a replica
#: that was frozen past its lease must not take back a claim another replica holds now
RELEASE_FOR_RETRY = """
UPDATE messages AS m
SET claimed_by = NULL, claimed_until = NULL, last_error = $3,
    next_attempt_at = now() + make_interval(secs => r.delay),
    delivery_attempts = m.delivery_attempts + CASE WHEN $4 THEN 1 ELSE 0 END
FROM unnest($1::bigint[], $2::float8[]) AS r(id, delay)
WHERE m.id = r.id AND m.delivered_at IS NULL AND m.claimed_by = $5
"""

#: give up on messages $1 with reason $2, those replica $3 still holds (see RELEASE_FOR_RETRY);
#: returns the ids given up on now
DEAD_LETTER = """
UPDATE messages
SET dead_lettered_at = now(), dead_letter_reason = $2, last_error = $2,
    claimed_by = NULL, claimed_until = NULL, delivery_attempts = delivery_attempts + 1
WHERE id = ANY($1::bigint[]) AND delivered_at IS NULL AND dead_lettered_at IS NULL
  AND claimed_by = $3
RETURNING id
"""

#: extend every live claim of replica $1 by $2 seconds: the heartbeat that keeps a slow
#: queue's messages from being taken over while this replica is alive
RENEW_CLAIMS_OF = f"""
UPDATE messages SET claimed_until = now() + make_interval(secs => $2)
WHERE claimed_by = $1 AND {_PENDING}
"""

#: release every undelivered claim of replica $1 (shutdown: another replica takes them now)
RELEASE_CLAIMS_OF = """
UPDATE messages SET claimed_by = NULL, claimed_until = NULL
WHERE claimed_by = $1 AND delivered_at IS NULL
"""

#: release the claims of replica $1 on messages $2 (work dropped from memory)
RELEASE_CLAIMS = """
UPDATE messages SET claimed_by = NULL, claimed_until = NULL
WHERE claimed_by = $1 AND id = ANY($2::bigint[]) AND delivered_at IS NULL
"""

#: Pusher is back (the circuit closed): every waiting message is due now, not after its backoff
MAKE_PENDING_DUE = f"""
UPDATE messages SET next_attempt_at = now()
WHERE {_PENDING} AND claimed_by IS NULL AND next_attempt_at > now()
"""

#: how many messages are pending and the age in seconds of the oldest (0 when none)
DELIVERY_BACKLOG = f"""
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age
FROM messages WHERE {_PENDING}
"""

#: record the recipient's first receipt of message $1 by user $2; no row when it is not their
#: message or was already received
RECORD_RECEIPT = """
UPDATE messages SET received_at = now()
WHERE id = $1 AND recipient_id = $2 AND received_at IS NULL
RETURNING conversation_id, seq, received_at,
          extract(epoch FROM received_at - created_at)::float8 AS latency
"""

#: whether user $2 is the recipient of message $1
IS_RECIPIENT = """
SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1 AND recipient_id = $2)
"""

#: the delivery-mode override in force, if any
DELIVERY_MODE_OVERRIDE = """
SELECT mode, changed_by, changed_at FROM delivery_mode_override
"""

#: set the override to mode $1, by $2
SET_DELIVERY_MODE_OVERRIDE = """
INSERT INTO delivery_mode_override (mode, changed_by) VALUES ($1, $2)
ON CONFLICT (singleton) DO UPDATE
SET mode = EXCLUDED.mode, changed_by = EXCLUDED.changed_by, changed_at = now()
"""

#: remove the override: every replica returns to its DELIVERY_MODE default
CLEAR_DELIVERY_MODE_OVERRIDE = "DELETE FROM delivery_mode_override"

#: keep who changed the mode ($1: async, sync or default) and when ($2: who)
RECORD_DELIVERY_MODE_CHANGE = """
INSERT INTO delivery_mode_changes (mode, changed_by) VALUES ($1, $2)
"""

#: the latest change of the delivery mode: who and when
LATEST_DELIVERY_MODE_CHANGE = """
SELECT mode, changed_by, changed_at FROM delivery_mode_changes ORDER BY id DESC LIMIT 1
"""

#: the LISTEN/NOTIFY channel every replica's delivery-mode watcher listens on
DELIVERY_MODE_CHANNEL = "delivery_mode"

#: wake every replica's watcher on channel $1 (DELIVERY_MODE_CHANNEL; payload $2: the new
#: mode) in the same transaction
NOTIFY_DELIVERY_MODE = "SELECT pg_notify($1, $2)"

#: dead-lettered messages since $1 (no content: on-call reads this)
DEAD_LETTERS_SINCE = """
SELECT id, conversation_id, created_at, dead_lettered_at, delivery_attempts, dead_letter_reason
FROM messages WHERE dead_lettered_at >= $1 ORDER BY id
"""

#: put messages dead-lettered since $1 back to pending, due now; returns how many
REPLAY_DEAD_LETTERS_SINCE = """
WITH replayed AS (
    UPDATE messages
    SET dead_lettered_at = NULL, dead_letter_reason = NULL, delivery_attempts = 0,
        next_attempt_at = now(), claimed_by = NULL, claimed_until = NULL
    WHERE dead_lettered_at >= $1
    RETURNING 1
)
SELECT count(*) FROM replayed
"""

#: how many messages were dead-lettered since $1 (`service doctor`)
DEAD_LETTERS_COUNT_SINCE = "SELECT count(*) FROM messages WHERE dead_lettered_at >= $1"

#: pending messages per replica whose claim has lapsed: held by a replica that stopped renewing
#: (dead, paused or cut off); another replica's relay takes them on its next poll
LAPSED_CLAIMS = f"""
SELECT claimed_by, count(*) AS messages FROM messages
WHERE claimed_by IS NOT NULL AND claimed_until < now() AND {_PENDING}
GROUP BY claimed_by ORDER BY claimed_by
"""

#: a cheap round trip for the readiness check
PING = "SELECT 1"
