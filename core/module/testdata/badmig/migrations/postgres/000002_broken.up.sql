-- A typo that a module author might ship.
ALTER TABLE notes ADD COLUMN body TEXT NOT NULL DEFAULT (;
