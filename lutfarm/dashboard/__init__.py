"""The web dashboard (``lutfarm serve``): boards, campaigns, LUTs and reports of a store."""
