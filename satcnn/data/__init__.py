"""satcnn.data."""
