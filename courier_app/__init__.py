"""The courier app (Flet). outbox and sync work without any UI and are tested on their own."""
