"""satcnn.tasks."""
