"""Getting stored messages to Pusher: the client, the event shape, background jobs, the mode."""
