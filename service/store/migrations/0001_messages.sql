-- Conversations between two users and the messages sent in them.
CREATE TABLE conversations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the pair is stored ordered so that 1->2 and 2->1 share one conversation
    user_low    bigint NOT NULL,
    user_high   bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_pair_ordered CHECK (0 < user_low AND user_low < user_high),
    CONSTRAINT conversations_pair_unique UNIQUE (user_low, user_high)
);

CREATE TABLE messages (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id    bigint NOT NULL REFERENCES conversations (id),
    sender_id          bigint NOT NULL,
    recipient_id       bigint NOT NULL,
    content            text NOT NULL,
    client_message_id  text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_sender_not_recipient CHECK (sender_id <> recipient_id),
    -- idempotent sends: a repeated clientMessageId from one sender is the same message
    CONSTRAINT messages_client_message_id_unique UNIQUE (sender_id, client_message_id)
);

-- history paging: WHERE conversation_id = $1 AND id > $2 ORDER BY id LIMIT n
CREATE INDEX messages_conversation_id_id ON messages (conversation_id, id);
