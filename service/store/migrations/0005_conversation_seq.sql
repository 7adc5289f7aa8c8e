-- Each message's place in its conversation: 1, 2, 3 … with no gap and no repeat, so a client
-- that has seen n and receives n + 2 knows exactly what it missed. The conversation row holds
-- the last number given; a send increments it in the statement that inserts the message, so
-- the row lock serialises the sends of one conversation (and only of that one) and a send that
-- fails rolls its number back with everything else.
ALTER TABLE conversations ADD COLUMN last_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN seq bigint;

-- Existing conversations are numbered in id order (the order they were stored in).
UPDATE messages AS m SET seq = numbered.seq
FROM (
    SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY id) AS seq
    FROM messages
) AS numbered
WHERE m.id = numbered.id;

UPDATE conversations AS c SET last_seq = numbered.last_seq
FROM (SELECT conversation_id, max(seq) AS last_seq FROM messages GROUP BY conversation_id)
    AS numbered
WHERE c.id = numbered.conversation_id;

ALTER TABLE messages ALTER COLUMN seq SET NOT NULL;
ALTER TABLE messages ADD CONSTRAINT messages_seq_positive CHECK (seq > 0);
-- no repeat, whatever went wrong; and history paging: WHERE conversation_id = $1 AND seq > $2
ALTER TABLE messages ADD CONSTRAINT messages_conversation_seq_unique UNIQUE (conversation_id, seq);
