"""The store: Chroma builds and their records, planning what a change adds and removes, the
keyword index, the serving snapshot, refreshes and status."""
