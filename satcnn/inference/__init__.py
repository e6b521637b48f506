"""satcnn.inference."""
