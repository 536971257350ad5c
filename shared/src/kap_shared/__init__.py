"""The KAP platform library shared by every service."""
