-- The rollback switch, shared by every replica: at most one row (the override in force).
-- No row means every replica uses its DELIVERY_MODE default.
CREATE TABLE delivery_mode_override (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode        text NOT NULL CHECK (mode IN ('async', 'sync')),
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- Who flipped it and when, kept for the post-incident review.
CREATE TABLE delivery_mode_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mode        text NOT NULL CHECK (mode IN ('async', 'sync', 'default')),
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
