-- Delivery state on the message row itself: the row is the outbox. A message is either
-- accepted by Pusher (delivered_at), given up on (dead_lettered_at), or pending; pending
-- rows are claimed with a lease (claimed_until) by the replica that is delivering them.
ALTER TABLE messages
    ADD COLUMN sender_socket_id    text,
    ADD COLUMN delivered_at        timestamptz,
    ADD COLUMN delivered_by        text,
    ADD COLUMN delivery_attempts   integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN claimed_by          text,
    ADD COLUMN claimed_until       timestamptz,
    ADD COLUMN last_error          text,
    ADD COLUMN dead_lettered_at    timestamptz,
    ADD COLUMN dead_letter_reason  text;

-- Messages stored before delivery was tracked were either delivered long ago or lost to
-- real-time for good: do not replay them on upgrade.
UPDATE messages SET delivered_at = created_at;

-- The relay's work queue: only pending rows are in it, so it stays small.
CREATE INDEX messages_pending_delivery ON messages (id)
    WHERE delivered_at IS NULL AND dead_lettered_at IS NULL;
