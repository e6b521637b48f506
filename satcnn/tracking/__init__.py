"""satcnn.tracking."""
