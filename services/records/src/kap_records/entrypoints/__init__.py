"""Records service layer."""
