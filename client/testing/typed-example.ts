// Compile-only check of src/index.d.ts through the package's own "exports" (not run):
//   npm run typecheck   (make test runs it)
import { ApiError, connect, type ChatMessage, type Client, type Conversation, type Message, type Stats } from "message-send-client";

const client: Client = connect({
  baseUrl: "http://127.0.0.1:8080",
  token: async () => "jwt",
  userId: 1,
  pusher: { key: "sandbox-key", wsHost: "127.0.0.1", wsPort: 6001, forceTLS: false, enabledTransports: ["ws"] },
  receipts: true,
  retry: { attempts: 3 },
});

const conversation: Conversation = client.open(7, {
  afterSeq: 0,
  onMessage(m: Message) {
    const seq: number = m.seq;
    void seq;
  },
  onChange(rows: ChatMessage[]) {
    for (const row of rows) {
      const state: "sending" | "saved" | "received" | "failed" = row.state;
      const seq: number | null = row.seq;
      void state, seq;
    }
  },
});

async function demo(): Promise<void> {
  try {
    const saved: Message = await client.send(2, "hi", { conversationId: conversation.id });
    console.log(saved.id, conversation.lastSeq);
  } catch (err) {
    if (err instanceof ApiError) console.log(err.status, err.code);
  }
  const stats: Stats = client.stats;
  console.log(stats.delivered, client.socketId, client.connectionState, client.userId);
  conversation.close();
  client.close();
}
void demo;
