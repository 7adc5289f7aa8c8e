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
    "id, conversation_id, sender_id, recipient_id, content, client_message_id, created_at"
)

#: store one message; no row when (sender, clientMessageId) was already used
INSERT_MESSAGE = f"""
INSERT INTO messages (conversation_id, sender_id, recipient_id, content, client_message_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (sender_id, client_message_id) DO NOTHING
RETURNING {_MESSAGE_COLUMNS}
"""

#: the message a sender already stored under a clientMessageId
MESSAGE_BY_CLIENT_ID = f"""
SELECT {_MESSAGE_COLUMNS} FROM messages WHERE sender_id = $1 AND client_message_id = $2
"""

#: one page of a conversation's history, oldest first, after a message id
CONVERSATION_MESSAGES = f"""
SELECT {_MESSAGE_COLUMNS} FROM messages
WHERE conversation_id = $1 AND id > $2
ORDER BY id
LIMIT $3
"""

#: a cheap round trip for the readiness check
PING = "SELECT 1"
