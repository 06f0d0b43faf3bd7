"""Trabecular bone morphometry, BoneJ-exact."""
