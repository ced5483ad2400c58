"""strongSwan VICI protocol support."""
