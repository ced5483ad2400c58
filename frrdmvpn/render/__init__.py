"""Pure renderers: config model and guard specs to kernel, FRR and strongSwan intents."""
