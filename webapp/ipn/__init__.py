"""Alix Pay's signed notifications (IPNs): stored raw first, then verified, then applied."""
