-- When the recipient's client confirmed it received the message (the first receipt counts),
-- and the W3C traceparent of the send request, so a delivery made later (retry, relay after a
-- crash) still links to the request that stored the message.
ALTER TABLE messages
    ADD COLUMN received_at  timestamptz,
    ADD COLUMN traceparent  text;
