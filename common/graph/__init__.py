"""The social graph over time: snapshots, neighbourhood proximity, friends of friends."""
